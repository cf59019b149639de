#pragma once
// C++17. The CUDA sparse gradient (kernels/sparse_grad.cu): sort (id, position) on the bits
// input_dim needs with cub::DeviceRadixSort, run-length encode with cub::DeviceRunLengthEncode,
// then the canonical reduction of segment_reduce.cu. Device memory throughout; the intermediates
// live in a workspace laid out by plan_fold_workspace (fold_workspace.hpp).

#include <embedkit/detail/padding.hpp>

#include "fold_workspace.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// The fold up to its piece sums (segment_reduce_kernel.hpp), in the workspace: `runs` strictly
/// increasing ids, run u made of pieces [first_piece[u], first_piece[u+1]) of piece_sums
/// (pieces × dim).
struct FoldPieces {
  const std::int64_t* ids = nullptr;
  std::int64_t runs = 0;
  const std::int64_t* first_piece = nullptr;  // runs + 1
  const float* piece_sums = nullptr;
  bool out_of_range = false;  ///< whether any id was outside [0, input_dim) (the bounds check's flag)
};

/// Folds the rows grad_rows[p] (count × dim) of positions p by ids[p], leaving out ids outside
/// [0, input_dim) and `padding`, up to the piece sums. Works in `workspace`
/// (layout.bytes, laid out by plan_fold_workspace(count, dim, query_fold_cub_bytes(count,
/// input_dim))). Throws Error(unsupported) past kFoldMaxCount positions (expect_fold_count), before
/// queueing anything. Synchronises `stream` (a cudaStream_t) three times, to learn the number of
/// distinct ids and of pieces. The fused step (fused_apply.hpp) combines the pieces in registers;
/// run_fold_rows writes them out as the sparse gradient.
template <class Index>
FoldPieces run_fold_pieces(const Index* ids, std::int64_t count, std::int64_t input_dim, detail::Padding padding,
                           const float* grad_rows, std::int64_t dim, void* workspace, const FoldWorkspace& layout,
                           void* stream);

/// CUB's scratch sizes for a fold of `count` positions (its size query: nothing runs on `stream`);
/// throws as run_fold_pieces past kFoldMaxCount.
FoldCubBytes query_fold_cub_bytes(std::int64_t count, std::int64_t input_dim, void* stream);

/// The sparse gradient of `pieces`: its pieces.runs ids to `ids` and its rows, each the sum of its
/// pieces left to right, to `rows` (pieces.runs × dim). Asynchronous on `stream`.
void run_fold_rows(const FoldPieces& pieces, std::int64_t dim, std::int64_t* ids, float* rows, void* stream);

/// Bits of a sort key that holds every id below input_dim and the sentinel input_dim itself.
int fold_key_bits(std::int64_t input_dim);

}  // namespace embedkit::kernels
