// torch's max_norm before a lookup: the renorm kernel, a lane group per position of the batch.
#include "cuda_try.hpp"
#include "group_reduce.hpp"
#include "launch_plan.hpp"
#include "renorm.hpp"

#include <cuda_runtime_api.h>

namespace embedkit::kernels {
namespace {

template <class Index>
__global__ void renorm_kernel(GroupPlan plan, RenormArgs<Index> args) {
  const std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * plan.groups_per_block +
                             static_cast<std::int64_t>(threadIdx.x) / plan.lanes;
  const int lane = static_cast<int>(threadIdx.x) % plan.lanes;
  // Lanes without a row (-1) still join every collective.
  long long id = lane == 0 ? renorm_claim_phase(group, args) : -1;
  id = __shfl_sync(0xffffffffu, id, 0, plan.lanes);
  const float largest = group_max_magnitude(renorm_largest_phase(id, lane, plan.lanes, args), plan.lanes);
  const double sum = group_sum(renorm_terms_phase(id, lane, plan.lanes, args, largest), plan.lanes);
  renorm_scale_phase(id, lane, plan.lanes, args, sum, largest);
}

}  // namespace

template <class Index>
void run_renorm(const RenormArgs<Index>& args, void* stream) {
  if (args.count == 0) return;
  const GroupPlan plan = plan_groups(args.count, args.dim);
  renorm_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(plan,
                                                                                                                  args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

template void run_renorm(const RenormArgs<std::int32_t>&, void*);
template void run_renorm(const RenormArgs<std::int64_t>&, void*);

}  // namespace embedkit::kernels
