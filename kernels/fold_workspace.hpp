#pragma once
// C++17, host only. Where the CUDA sparse gradient (sparse_grad.cu) keeps its intermediates in one
// workspace sized up front from the batch alone, so a table's workspace is allocated once and
// grown only when a larger batch arrives. Sizes are worst cases: a batch of `count` positions has
// at most `count` distinct ids and at most `count` pieces (every piece holds a position). Arrays
// whose lives do not overlap share bytes:
//   stage      sort                 run-length encode       scans                  layout, sums, combine
//   region a   keys                 unique ids ........................................................
//   region b   positions            run counts ............ (read)                 piece ends, then
//                                                                                  the bounds check's
//                                                                                  second-pass tallies
//   region c   sorted keys (read)   ...                     piece counts (read)    piece begins
//   region d   sorted positions ..........................................................(read)
//   own        CUB scratch (each CUB call in turn), run total and bounds flag, run begins, first
//              pieces, piece sums.

#include <embedkit/status.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace embedkit::kernels {

/// Scratch bytes CUB asks for (its two-phase size query) at a batch of `count` positions.
struct FoldCubBytes {
  std::size_t sort = 0;    ///< cub::DeviceRadixSort::SortPairs
  std::size_t encode = 0;  ///< cub::DeviceRunLengthEncode::Encode
  std::size_t scan = 0;    ///< cub::DeviceScan::InclusiveSum over int64
};

/// Byte offsets into the workspace; every array is aligned to kFoldAlignment.
struct FoldWorkspace {
  std::size_t keys = 0, unique = 0;                                // region a: int64[count]
  std::size_t positions = 0, run_counts = 0, piece_end = 0;        // region b: int64[count]
  std::size_t sorted_keys = 0, piece_counts = 0, piece_begin = 0;  // region c: int64[count]
  std::size_t sorted_positions = 0;                                // region d: int64[count]
  std::size_t cub_scratch = 0;                                     // max of FoldCubBytes
  std::size_t cub_scratch_bytes = 0;
  std::size_t run_total = 0;    // int64[2]: the run total, then the bounds check's flag
  std::size_t run_begin = 0;    // int64[count + 1]
  std::size_t first_piece = 0;  // int64[count + 1]
  std::size_t piece_sums = 0;   // float[count × dim]
  std::size_t bytes = 0;        // the whole workspace
};

/// The alignment of every array: CUB's own, and a 16-byte vector's many times over.
constexpr std::size_t kFoldAlignment = 256;

/// `bytes` rounded up to the next multiple of kFoldAlignment.
constexpr std::size_t fold_align(std::size_t bytes) {
  return (bytes + kFoldAlignment - 1) / kFoldAlignment * kFoldAlignment;
}

/// The most positions one fold takes: cub::DeviceRunLengthEncode::Encode counts its items in an int.
constexpr std::int64_t kFoldMaxCount = std::numeric_limits<std::int32_t>::max();

/// Throws Error(unsupported), naming `count`, when a fold of `count` positions exceeds kFoldMaxCount.
inline void expect_fold_count(std::int64_t count) {
  if (count <= kFoldMaxCount) return;
  throw Error(Status::unsupported, "a CUDA train step of " + std::to_string(count) + " ids exceeds " +
                                       std::to_string(kFoldMaxCount) +
                                       ", the most CUB's run-length encode counts (a 32-bit int): split the batch");
}

/// The layout for a batch of `count` positions of rows of `dim` floats.
inline FoldWorkspace plan_fold_workspace(std::int64_t count, std::int64_t dim, const FoldCubBytes& cub) {
  const auto n = static_cast<std::size_t>(count > 0 ? count : 1);
  const std::size_t ids = fold_align(n * sizeof(std::int64_t));
  const std::size_t scans = fold_align((n + 1) * sizeof(std::int64_t));
  FoldWorkspace w;
  std::size_t at = 0;
  const auto take = [&at](std::size_t bytes) {
    const std::size_t offset = at;
    at += fold_align(bytes);
    return offset;
  };
  w.keys = w.unique = take(ids);
  w.positions = w.run_counts = w.piece_end = take(ids);
  w.sorted_keys = w.piece_counts = w.piece_begin = take(ids);
  w.sorted_positions = take(ids);
  w.cub_scratch_bytes = cub.sort > cub.encode ? cub.sort : cub.encode;
  if (cub.scan > w.cub_scratch_bytes) w.cub_scratch_bytes = cub.scan;
  w.cub_scratch = take(w.cub_scratch_bytes > 0 ? w.cub_scratch_bytes : 1);
  w.run_total = take(2 * sizeof(std::int64_t));
  w.run_begin = take(scans);
  w.first_piece = take(scans);
  w.piece_sums = take(n * static_cast<std::size_t>(dim > 0 ? dim : 1) * sizeof(float));
  w.bytes = at;
  return w;
}

}  // namespace embedkit::kernels
