#pragma once
// C++17, host and device. The canonical reduction of a sparse gradient on the GPU
// (include/embedkit/detail/summation_order.hpp), after the sort and run-length encoding:
//   1. piece_layout_body: one thread per run writes where each of its pieces starts and ends;
//   2. piece_sum_body: one lane group per piece sums its rows left to right;
//   3. combine_body: one lane group per run adds its piece sums left to right.
// No atomics: every output element has one writer, in a fixed order. The __global__ wrappers are
// in sparse_grad.cu; tests run these bodies for every coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/summation_order.hpp>

#include "launch_plan.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// Threads per block of the one-thread-per-run layout pass.
constexpr int kLayoutBlockThreads = 256;

/// Run u covers sorted positions [run_begin[u], run_begin[u+1]) and pieces
/// [first_piece[u], first_piece[u+1]) (an exclusive scan of sum_piece_count); this writes the
/// [piece_begin[p], piece_end[p]) of each of its pieces.
struct PieceLayoutArgs {
  const std::int64_t* run_begin;    // runs + 1
  const std::int64_t* first_piece;  // runs + 1
  std::int64_t runs;
  std::int64_t* piece_begin;  // pieces
  std::int64_t* piece_end;    // pieces
};

EK_HOST_DEVICE inline void piece_layout_body(std::int64_t block, int thread, const PieceLayoutArgs& a) {
  const std::int64_t u = block * kLayoutBlockThreads + thread;
  if (u >= a.runs) return;
  for (std::int64_t p = a.first_piece[u]; p < a.first_piece[u + 1]; ++p) {
    const std::int64_t begin = a.run_begin[u] + (p - a.first_piece[u]) * detail::kSumPieceSize;
    a.piece_begin[p] = begin;
    a.piece_end[p] =
        begin + detail::kSumPieceSize < a.run_begin[u + 1] ? begin + detail::kSumPieceSize : a.run_begin[u + 1];
  }
}

/// piece_sums[p, :] = the rows of positions sorted[piece_begin[p] .. piece_end[p]) of `grad`
/// (rows of `dim`), added left to right from the first.
struct PieceSumArgs {
  const std::int64_t* sorted_positions;
  const std::int64_t* piece_begin;
  const std::int64_t* piece_end;
  std::int64_t pieces;
  const float* grad;
  std::int64_t dim;
  float* piece_sums;
};

EK_HOST_DEVICE inline void piece_sum_body(std::int64_t block, int thread, const GroupPlan& plan,
                                          const PieceSumArgs& a) {
  const std::int64_t p = block * plan.groups_per_block + thread / plan.lanes;
  if (p >= a.pieces) return;
  const std::int64_t* positions = a.sorted_positions;
  for (std::int64_t c = thread % plan.lanes; c < a.dim; c += plan.lanes) {
    float sum = a.grad[positions[a.piece_begin[p]] * a.dim + c];
    for (std::int64_t k = a.piece_begin[p] + 1; k < a.piece_end[p]; ++k) sum += a.grad[positions[k] * a.dim + c];
    a.piece_sums[p * a.dim + c] = sum;
  }
}

/// rows[u, :] = the piece sums of run u added left to right from the first.
struct CombineArgs {
  const std::int64_t* first_piece;  // runs + 1
  std::int64_t runs;
  const float* piece_sums;
  std::int64_t dim;
  float* rows;
};

/// Column c of run u's gradient: its piece sums added left to right from the first. The fused
/// step (fused_apply_kernel.hpp) calls this too, so both paths add in the one canonical order.
EK_HOST_DEVICE inline float combined_column(const std::int64_t* first_piece, std::int64_t u, const float* piece_sums,
                                            std::int64_t dim, std::int64_t c) {
  float sum = piece_sums[first_piece[u] * dim + c];
  for (std::int64_t q = first_piece[u] + 1; q < first_piece[u + 1]; ++q) sum += piece_sums[q * dim + c];
  return sum;
}

EK_HOST_DEVICE inline void combine_body(std::int64_t block, int thread, const GroupPlan& plan, const CombineArgs& a) {
  const std::int64_t u = block * plan.groups_per_block + thread / plan.lanes;
  if (u >= a.runs) return;
  for (std::int64_t c = thread % plan.lanes; c < a.dim; c += plan.lanes) {
    a.rows[u * a.dim + c] = combined_column(a.first_piece, u, a.piece_sums, a.dim, c);
  }
}

}  // namespace embedkit::kernels
