#pragma once
// C++17, host and device. The body of kernels/table_ops.cu's penalty kernel: l1·Σ|w| + l2·Σw² of a
// table's weights in include/embedkit/detail/penalty.hpp's order (chunks of kPenaltyChunk weights,
// each summed left to right in double), so the device's partial sums are the CPU's bit for bit.
// One warp per chunk reads it cooperatively: tile by tile of kPenaltyTile weights, lane l loads
// weights 4l..4l+3 of the tile (consecutive lanes, consecutive 16 bytes) and computes their terms
// into the warp's tile of terms (shared memory on the device); after a __syncwarp every lane adds
// the tile's terms to the chunk's sum in index order. Only the additions are sequential, and they
// read shared memory, not global. Tests replay the two phases tile by tile on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/penalty.hpp>

#include "gather_kernel.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// Lanes per chunk (a warp), weights one lane loads per tile, and chunks per block.
constexpr int kPenaltyLanes = 32;
constexpr int kPenaltyLaneWeights = 4;
constexpr int kPenaltyTile = kPenaltyLanes * kPenaltyLaneWeights;
constexpr int kPenaltyChunksPerBlock = 8;
constexpr int kPenaltyBlockThreads = kPenaltyLanes * kPenaltyChunksPerBlock;

struct PenaltyArgs {
  const float* weights;
  std::int64_t count;
  double l1;
  double l2;
  bool aligned;      ///< weights is 16-byte aligned: whole groups of 4 load as one vector
  double* partials;  ///< detail::penalty_chunks(count) chunk sums
};

/// Blocks of a launch over `count` weights.
EK_HOST_DEVICE constexpr std::int64_t penalty_blocks(std::int64_t count) {
  return (detail::penalty_chunks(count) + kPenaltyChunksPerBlock - 1) / kPenaltyChunksPerBlock;
}

/// Tiles of chunk `chunk` (the last tile of the last chunk may be partial).
EK_HOST_DEVICE inline std::int64_t penalty_tiles(const PenaltyArgs& a, std::int64_t chunk) {
  const std::int64_t weights = detail::penalty_chunk_end(a.count, chunk) - chunk * detail::kPenaltyChunk;
  return (weights + kPenaltyTile - 1) / kPenaltyTile;
}

/// Phase 1, lane `lane`: the terms of its weights of tile `tile` of chunk `chunk` into
/// terms[4·lane .. 4·lane+3] (0 past the chunk's end, never added).
EK_HOST_DEVICE inline void penalty_terms_phase(const PenaltyArgs& a, std::int64_t chunk, std::int64_t tile, int lane,
                                               double* terms) {
  const std::int64_t end = detail::penalty_chunk_end(a.count, chunk);
  const std::int64_t first = chunk * detail::kPenaltyChunk + tile * kPenaltyTile + lane * kPenaltyLaneWeights;
  double* mine = terms + lane * kPenaltyLaneWeights;
  if (a.aligned && first + kPenaltyLaneWeights <= end) {
    // first is a multiple of 4 floats from an aligned base: one 16-byte load.
    const Float4 w = *reinterpret_cast<const Float4*>(a.weights + first);
    mine[0] = detail::penalty_term(w.x, a.l1, a.l2);
    mine[1] = detail::penalty_term(w.y, a.l1, a.l2);
    mine[2] = detail::penalty_term(w.z, a.l1, a.l2);
    mine[3] = detail::penalty_term(w.w, a.l1, a.l2);
    return;
  }
  EK_UNROLL
  for (int k = 0; k < kPenaltyLaneWeights; ++k) {
    mine[k] = first + k < end ? detail::penalty_term(a.weights[first + k], a.l1, a.l2) : 0.0;
  }
}

/// Phase 2, every lane alike: `sum` plus the tile's terms that lie inside the chunk, in index
/// order (detail::penalty_chunk's additions).
EK_HOST_DEVICE inline double penalty_add_phase(const PenaltyArgs& a, std::int64_t chunk, std::int64_t tile,
                                               const double* terms, double sum) {
  const std::int64_t first = chunk * detail::kPenaltyChunk + tile * kPenaltyTile;
  const std::int64_t left = detail::penalty_chunk_end(a.count, chunk) - first;
  const int n = left < kPenaltyTile ? static_cast<int>(left) : kPenaltyTile;
  for (int i = 0; i < n; ++i) sum += terms[i];
  return sum;
}

}  // namespace embedkit::kernels
