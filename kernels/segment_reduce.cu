// The CUDA canonical reduction: __global__ wrappers over segment_reduce_kernel.hpp's bodies.
#include "cuda_try.hpp"
#include "segment_reduce.hpp"

#include <cuda_runtime_api.h>

namespace embedkit::kernels {
namespace {

__global__ void piece_layout_kernel(PieceLayoutArgs args) {
  piece_layout_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), args);
}

__global__ void piece_sum_kernel(GroupPlan plan, PieceSumArgs args) {
  piece_sum_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), plan, args);
}

__global__ void combine_kernel(GroupPlan plan, CombineArgs args) {
  combine_body(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), plan, args);
}

}  // namespace

void run_piece_layout(const PieceLayoutArgs& args, void* stream) {
  if (args.runs == 0) return;
  const auto blocks = static_cast<unsigned int>((args.runs + kLayoutBlockThreads - 1) / kLayoutBlockThreads);
  piece_layout_kernel<<<blocks, kLayoutBlockThreads, 0, static_cast<cudaStream_t>(stream)>>>(args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

void run_piece_sums(const PieceSumArgs& args, void* stream) {
  if (args.pieces == 0) return;
  const GroupPlan plan = plan_groups(args.pieces, args.dim);
  piece_sum_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(
      plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

void run_combine(const CombineArgs& args, void* stream) {
  if (args.runs == 0) return;
  const GroupPlan plan = plan_groups(args.runs, args.dim);
  combine_kernel<<<static_cast<unsigned int>(plan.blocks), plan.threads(), 0, static_cast<cudaStream_t>(stream)>>>(
      plan, args);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
}

}  // namespace embedkit::kernels
