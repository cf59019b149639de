// The CUDA pooled lookup: a __global__ wrapper over pooled_body, and its host launcher.
#include "cuda_try.hpp"
#include "pooled.hpp"
#include "pooled_kernel.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace embedkit::kernels {
namespace {

template <class Index>
__global__ void pooled_kernel(PooledPlan plan, PooledArgs<Index> args) {
  pooled_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), plan, args);
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace

template <class Index>
void run_pooled(const float* weights, std::int64_t input_dim, std::int64_t dim, const detail::PooledBatch<Index>& batch,
                float* out, unsigned int* out_of_range, std::int64_t* argmax, void* stream) {
  if (batch.bags == 0) return;
  const PooledPlan plan = plan_pooled(batch.bags, dim, aligned16(weights) && aligned16(out));
  const PooledArgs<Index> args{weights, input_dim, dim, batch, out, out_of_range, argmax};
  pooled_kernel<<<static_cast<unsigned int>(plan.groups.blocks), plan.groups.threads(), 0,
                  static_cast<cudaStream_t>(stream)>>>(plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

template void run_pooled(const float*, std::int64_t, std::int64_t, const detail::PooledBatch<std::int32_t>&, float*,
                         unsigned int*, std::int64_t*, void*);
template void run_pooled(const float*, std::int64_t, std::int64_t, const detail::PooledBatch<std::int64_t>&, float*,
                         unsigned int*, std::int64_t*, void*);

}  // namespace embedkit::kernels
