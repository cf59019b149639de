// The CUDA pooled lookup: a __global__ wrapper over pooled_body, and its host launcher.
#include "cuda_try.hpp"
#include "pooled.hpp"
#include "pooled_kernel.hpp"

#include <cuda_runtime_api.h>

namespace embedkit::kernels {
namespace {

template <class Index>
__global__ void pooled_kernel(GroupPlan plan, PooledArgs<Index> args) {
  pooled_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), plan, args);
}

}  // namespace

template <class Index>
void run_pooled(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                const std::int64_t* offsets, std::int64_t bags, const float* sample_weights, PoolingMode mode,
                std::int64_t padding_idx, float* out, void* stream) {
  if (bags == 0) return;
  const GroupPlan plan = plan_groups(bags, dim);
  const PooledArgs<Index> args{weights, input_dim, dim, ids, offsets, bags, sample_weights, mode, padding_idx, out};
  pooled_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(
      plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

template void run_pooled(const float*, std::int64_t, std::int64_t, const std::int32_t*, const std::int64_t*,
                         std::int64_t, const float*, PoolingMode, std::int64_t, float*, void*);
template void run_pooled(const float*, std::int64_t, std::int64_t, const std::int64_t*, const std::int64_t*,
                         std::int64_t, const float*, PoolingMode, std::int64_t, float*, void*);

}  // namespace embedkit::kernels
