// The CUDA optimizer step: one lane group per row, the phases of optimizer_kernel.hpp around the
// group collective.
#include "cuda_try.hpp"
#include "group_reduce.hpp"
#include "optimizer.hpp"
#include "segment_reduce_kernel.hpp"

#include <cuda_runtime_api.h>

namespace embedkit::kernels {
namespace {

__global__ void apply_kernel(GroupPlan plan, ApplyArgs args) {
  const std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * plan.groups_per_block +
                             static_cast<std::int64_t>(threadIdx.x) / plan.lanes;
  const int lane = static_cast<int>(threadIdx.x) % plan.lanes;
  // Threads without a row still take part in the collectives, with zeros.
  const RowWork work = row_work(group, args);
  const float accumulator =
      work.id >= 0 && args.step.kind == OptimizerKind::rowwise_adagrad ? args.step.slot0[work.id] : 0.0f;
  const float gradient_squares = group_sum(gradient_squares_phase(work, lane, plan.lanes, args), plan.lanes);
  update_phase(work, lane, plan.lanes, args, gradient_squares, accumulator);
  __syncwarp();
  const float weight_squares = group_sum(weight_squares_phase(work.id, lane, plan.lanes, args.step), plan.lanes);
  constraint_phase(work.id, lane, plan.lanes, args.step, weight_squares);
}

}  // namespace

void run_apply(const ApplyArgs& args, std::int64_t groups, void* stream) {
  if (groups == 0) return;
  const GroupPlan plan = plan_groups(groups, args.step.dim);
  apply_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(
      plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

}  // namespace embedkit::kernels
