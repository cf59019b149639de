#pragma once
// C++17. The CUDA sparse gradient (kernels/sparse_grad.cu): sort (id, position) on the bits
// input_dim needs with cub::DeviceRadixSort, run-length encode with cub::DeviceRunLengthEncode,
// then the canonical reduction of segment_reduce.cu. Device memory throughout.

#include <cstddef>
#include <cstdint>

namespace embedkit::kernels {

/// Where the pipeline gets its device memory: `allocate` returns memory that stays valid until the
/// caller's `context` releases it (after the result has been used).
struct DeviceAllocator {
  void* (*allocate)(std::size_t bytes, void* context);
  void* context;
};

/// The folded gradient: `count` strictly increasing ids and their rows (count × dim).
struct FoldOutput {
  std::int64_t* ids = nullptr;
  float* rows = nullptr;
  std::int64_t count = 0;
};

/// The fold up to its piece sums (segment_reduce_kernel.hpp): `runs` strictly increasing ids, run u
/// made of pieces [first_piece[u], first_piece[u+1]) of piece_sums (pieces × dim).
struct FoldPieces {
  std::int64_t* ids = nullptr;
  std::int64_t runs = 0;
  std::int64_t* first_piece = nullptr;  // runs + 1
  float* piece_sums = nullptr;
};

/// run_fold without the last pass: what the fused step (fused_apply.hpp) combines in registers.
template <class Index>
FoldPieces run_fold_pieces(const Index* ids, std::int64_t count, std::int64_t input_dim, std::int64_t padding_idx,
                           const float* grad_rows, std::int64_t dim, const DeviceAllocator& allocator, void* stream);

/// Folds the rows grad_rows[p] (count × dim) of positions p by ids[p], leaving out ids outside
/// [0, input_dim) and padding_idx (>= 0). Synchronises `stream` (a cudaStream_t) twice, to learn
/// the number of distinct ids and of pieces.
template <class Index>
FoldOutput run_fold(const Index* ids, std::int64_t count, std::int64_t input_dim, std::int64_t padding_idx,
                    const float* grad_rows, std::int64_t dim, const DeviceAllocator& allocator, void* stream);

/// Bits of a sort key that holds every id below input_dim and the sentinel input_dim itself.
int fold_key_bits(std::int64_t input_dim);

}  // namespace embedkit::kernels
