// The remaining CUDA table operations: __global__ wrappers and launchers.
#include <embedkit/detail/penalty.hpp>

#include "cuda_try.hpp"
#include "group_reduce.hpp"
#include "optimizer_kernel.hpp"
#include "penalty_kernel.hpp"
#include "table_ops.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace embedkit::kernels {
namespace {

unsigned int element_blocks(std::int64_t count) {
  return static_cast<unsigned int>((count + kElementBlockThreads - 1) / kElementBlockThreads);
}

__global__ void fill_initial_kernel(FillInitialArgs args) {
  fill_initial_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), args);
}
__global__ void fill_kernel(FillArgs args) {
  fill_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), args);
}
__global__ void nonfinite_kernel(NonFinitePlan plan, NonFiniteArgs args) {
  const int lanes = plan.groups.lanes;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * plan.groups.groups_per_block +
                           static_cast<std::int64_t>(threadIdx.x) / lanes;
  const int lane = static_cast<int>(threadIdx.x) % lanes;
  // Lanes past the batch still join the group's sum.
  const float bad_lanes = group_sum(nonfinite_row_phase(plan, args, row, lane), lanes);
  nonfinite_mark_phase(args, row, lane, bad_lanes);
}
template <class Index>
__global__ void entry_rows_kernel(GroupPlan plan, EntryRowsArgs<Index> args) {
  entry_rows_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), plan, args);
}

__global__ void constrain_kernel(GroupPlan plan, RowStep step, std::int64_t rows) {
  const std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * plan.groups_per_block +
                             static_cast<std::int64_t>(threadIdx.x) / plan.lanes;
  const int lane = static_cast<int>(threadIdx.x) % plan.lanes;
  const std::int64_t id = group < rows ? group : -1;  // lanes without a row still join the collective
  const detail::SquareSum squares = group_sum(weight_squares_phase(id, lane, plan.lanes, step), plan.lanes);
  constraint_phase(id, lane, plan.lanes, step, squares);
}

// A warp per chunk (penalty_kernel.hpp): the lanes load the chunk tile by tile, 16 contiguous bytes
// each, into the warp's tile of terms; every lane then adds the tile to the chunk's sum in index
// order, so all lanes hold the CPU's sum and lane 0 stores it.
__global__ void __launch_bounds__(kPenaltyBlockThreads) penalty_kernel(PenaltyArgs args) {
  __shared__ double terms[kPenaltyChunksPerBlock][kPenaltyTile];
  const int warp = static_cast<int>(threadIdx.x) / kPenaltyLanes;
  const int lane = static_cast<int>(threadIdx.x) % kPenaltyLanes;
  const std::int64_t chunk = static_cast<std::int64_t>(blockIdx.x) * kPenaltyChunksPerBlock + warp;
  if (chunk >= detail::penalty_chunks(args.count)) return;  // the whole warp: a warp is one chunk
  double sum = 0.0;
  const std::int64_t tiles = penalty_tiles(args, chunk);
  for (std::int64_t tile = 0; tile < tiles; ++tile) {
    penalty_terms_phase(args, chunk, tile, lane, terms[warp]);
    __syncwarp();
    sum = penalty_add_phase(args, chunk, tile, terms[warp], sum);
    __syncwarp();  // every lane has read the tile before the next one overwrites it
  }
  if (lane == 0) args.partials[chunk] = sum;
}

}  // namespace

void run_fill_initial(const FillInitialArgs& args, void* stream) {
  const std::int64_t count = args.rows * args.dim;
  if (count == 0) return;
  fill_initial_kernel<<<element_blocks(count), kElementBlockThreads, 0, static_cast<cudaStream_t>(stream)>>>(args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

void run_fill(const FillArgs& args, void* stream) {
  if (args.count == 0) return;
  fill_kernel<<<element_blocks(args.count), kElementBlockThreads, 0, static_cast<cudaStream_t>(stream)>>>(args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

void run_nonfinite(const NonFiniteArgs& args, void* stream) {
  if (args.count == 0) return;
  const NonFinitePlan plan =
      plan_nonfinite(args.count, args.dim, reinterpret_cast<std::uintptr_t>(args.rows) % 16 == 0);
  nonfinite_kernel<<<static_cast<unsigned int>(plan.groups.blocks), plan.groups.threads(), 0,
                     static_cast<cudaStream_t>(stream)>>>(plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

template <class Index>
void run_entry_rows(const EntryRowsArgs<Index>& args, void* stream) {
  if (args.batch.bags == 0) return;
  const GroupPlan plan = plan_groups(args.batch.bags, args.dim);
  entry_rows_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(
      plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

void run_constrain(float* weights, std::int64_t rows, std::int64_t dim, ConstraintKind constraint, float max_value,
                   void* stream) {
  if (rows == 0 || constraint == ConstraintKind::none) return;
  RowStep step{};
  step.weights = weights;
  step.dim = dim;
  step.rule.constraint = constraint;
  step.rule.max_value = max_value;
  const GroupPlan plan = plan_groups(rows, dim);
  constrain_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(
      plan, step, rows);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

void run_penalty_chunks(const float* weights, std::int64_t count, double l1, double l2, double* partials,
                        void* stream) {
  if (count == 0) return;
  const PenaltyArgs args{weights, count, l1, l2, reinterpret_cast<std::uintptr_t>(weights) % 16 == 0, partials};
  penalty_kernel<<<static_cast<unsigned int>(penalty_blocks(count)), kPenaltyBlockThreads, 0,
                   static_cast<cudaStream_t>(stream)>>>(args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

template void run_entry_rows(const EntryRowsArgs<std::int32_t>&, void*);
template void run_entry_rows(const EntryRowsArgs<std::int64_t>&, void*);

}  // namespace embedkit::kernels
