// The fused train step: one lane group per run, fused_apply_kernel.hpp's phases around the group
// collective, then optimizer_kernel.hpp's constraint phases.
#include "cuda_try.hpp"
#include "fused_apply.hpp"
#include "group_reduce.hpp"

#include <cuda_runtime_api.h>

namespace embedkit::kernels {
namespace {

__global__ void fused_apply_kernel(GroupPlan plan, FusedApplyArgs args) {
  const std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * plan.groups_per_block +
                             static_cast<std::int64_t>(threadIdx.x) / plan.lanes;
  const int lane = static_cast<int>(threadIdx.x) % plan.lanes;
  // Threads without a row still take part in the collectives, with zeros.
  LaneRow row = combine_phase(group, lane, plan.lanes, args);
  if (args.skip_nonfinite) {
    const float bad = group_sum(nonfinite_phase(row, lane, plan.lanes, args.step.dim), plan.lanes);
    if (bad > 0.0f) {
      if (lane == 0) atomicAdd(args.skipped, 1ull);  // a count: its final value is order-free
      row.id = -1;
    }
  }
  const float accumulator =
      row.id >= 0 && detail::has_row_statistic(args.step.rule.kind) ? args.step.slot0[row.id] : 0.0f;
  const float gradient_squares = group_sum(fused_gradient_squares_phase(row, lane, plan.lanes, args.step), plan.lanes);
  const LaneUpdate update = fused_update_phase(row, lane, plan.lanes, args.step, gradient_squares, accumulator);
  if (args.step.rule.judge_results) {  // the same for every thread: the collective stays whole
    const float rejected = group_sum(fused_judge_phase(row, update, lane, plan.lanes, args.step.dim), plan.lanes);
    if (rejected > 0.0f) {
      if (lane == 0) atomicAdd(args.skipped, 1ull);
      row.id = -1;
    }
  }
  fused_store_phase(row, update, lane, plan.lanes, args.step);
  __syncwarp();
  const detail::SquareSum weight_squares =
      group_sum(weight_squares_phase(row.id, lane, plan.lanes, args.step), plan.lanes);
  constraint_phase(row.id, lane, plan.lanes, args.step, weight_squares);
}

}  // namespace

void run_fused_apply(const FusedApplyArgs& args, void* stream) {
  if (args.runs == 0) return;
  const GroupPlan plan = plan_groups(args.runs, args.step.dim);
  fused_apply_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(
      plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

}  // namespace embedkit::kernels
