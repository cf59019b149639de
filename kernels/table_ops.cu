// The remaining CUDA table operations: __global__ wrappers and launchers.
#include <embedkit/detail/penalty.hpp>

#include "cuda_try.hpp"
#include "group_reduce.hpp"
#include "optimizer_kernel.hpp"
#include "table_ops.hpp"

#include <cuda_runtime_api.h>

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
__global__ void nonfinite_kernel(NonFiniteArgs args) {
  nonfinite_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), args);
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

// Thread k sums chunk k, as the CPU's loop does (include/embedkit/detail/penalty.hpp).
__global__ void penalty_kernel(const float* weights, std::int64_t count, double l1, double l2, double* partials) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * kElementBlockThreads + threadIdx.x;
  if (k >= detail::penalty_chunks(count)) return;
  partials[k] = detail::penalty_chunk(weights, count, k, l1, l2);
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
  nonfinite_kernel<<<element_blocks(args.count), kElementBlockThreads, 0, static_cast<cudaStream_t>(stream)>>>(args);
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
  const std::int64_t chunks = detail::penalty_chunks(count);
  if (chunks == 0) return;
  penalty_kernel<<<element_blocks(chunks), kElementBlockThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      weights, count, l1, l2, partials);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

template void run_entry_rows(const EntryRowsArgs<std::int32_t>&, void*);
template void run_entry_rows(const EntryRowsArgs<std::int64_t>&, void*);

}  // namespace embedkit::kernels
