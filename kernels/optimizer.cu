// The CUDA optimizer step: one lane group per row, the phases of optimizer_kernel.hpp around the
// group collective; and its judgement of the updates alone, for the error policy's check.
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
  RowWork work = row_work(group, args);
  const float accumulator =
      work.id >= 0 && detail::has_row_statistic(args.step.rule.kind) ? args.step.slot0[work.id] : 0.0f;
  const float gradient_squares = group_sum(gradient_squares_phase(work, lane, plan.lanes, args), plan.lanes);
  if (args.step.rule.judge_results) {  // the same for every thread: the collective stays whole
    const float rejected =
        group_sum(judge_phase(work, lane, plan.lanes, args, gradient_squares, accumulator), plan.lanes);
    if (rejected > 0.0f) {
      if (lane == 0) atomicAdd(args.rejected, 1ull);  // a count: its final value is order-free
      work.id = -1;
    }
  }
  update_phase(work, lane, plan.lanes, args, gradient_squares, accumulator);
  __syncwarp();
  const detail::SquareSum weight_squares =
      group_sum(weight_squares_phase(work.id, lane, plan.lanes, args.step), plan.lanes);
  constraint_phase(work.id, lane, plan.lanes, args.step, weight_squares);
}

// apply_kernel's judgement alone: nothing written but the smallest rejected id, in *first.
__global__ void find_rejected_kernel(GroupPlan plan, ApplyArgs args, unsigned long long* first) {
  const std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * plan.groups_per_block +
                             static_cast<std::int64_t>(threadIdx.x) / plan.lanes;
  const int lane = static_cast<int>(threadIdx.x) % plan.lanes;
  const RowWork work = row_work(group, args);
  const float accumulator =
      work.id >= 0 && detail::has_row_statistic(args.step.rule.kind) ? args.step.slot0[work.id] : 0.0f;
  const float gradient_squares = group_sum(gradient_squares_phase(work, lane, plan.lanes, args), plan.lanes);
  const float rejected =
      group_sum(judge_phase(work, lane, plan.lanes, args, gradient_squares, accumulator), plan.lanes);
  // The minimum is order-free; ids are sorted, so the smallest id is the smallest position's.
  if (rejected > 0.0f && lane == 0) atomicMin(first, static_cast<unsigned long long>(work.id));
}

}  // namespace

void run_apply(const ApplyArgs& args, std::int64_t groups, void* stream) {
  if (groups == 0) return;
  const GroupPlan plan = plan_groups(groups, args.step.dim);
  apply_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(plan,
                                                                                                                 args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

void run_find_rejected(const ApplyArgs& args, std::int64_t groups, unsigned long long* first, void* stream) {
  if (groups == 0) return;
  const GroupPlan plan = plan_groups(groups, args.step.dim);
  find_rejected_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0,
                         static_cast<cudaStream_t>(stream)>>>(plan, args, first);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

}  // namespace embedkit::kernels
