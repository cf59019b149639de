// The CUDA row gather: a __global__ wrapper over gather_body, and its host launcher.
#include "cuda_try.hpp"
#include "gather.hpp"
#include "gather_kernel.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace embedkit::kernels {
namespace {

template <class Index>
__global__ void gather_kernel(GatherPlan plan, GatherArgs<Index> args) {
  gather_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), plan, args);
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace

template <class Index>
void run_gather(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                detail::Padding padding, float* out, unsigned int* out_of_range, void* stream) {
  if (count == 0) return;
  const GatherPlan plan = plan_gather(count, dim, aligned16(weights) && aligned16(out));
  const GatherArgs<Index> args{weights, input_dim, dim, ids, count, padding, out, out_of_range};
  gather_kernel<<<static_cast<unsigned int>(plan.groups.blocks), plan.groups.threads(), 0,
                  static_cast<cudaStream_t>(stream)>>>(plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

template void run_gather(const float*, std::int64_t, std::int64_t, const std::int32_t*, std::int64_t, detail::Padding,
                         float*, unsigned int*, void*);
template void run_gather(const float*, std::int64_t, std::int64_t, const std::int64_t*, std::int64_t, detail::Padding,
                         float*, unsigned int*, void*);

}  // namespace embedkit::kernels
