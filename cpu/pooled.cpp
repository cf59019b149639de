#include "pooled.hpp"

#include <embedkit/detail/pooling_math.hpp>

#include "index_scan.hpp"
#include "parallel.hpp"
#include "prefetch.hpp"

#include <algorithm>

namespace embedkit::cpu {
namespace {

// Columns a bag accumulates at a time, in a local array the compiler keeps in vector registers
// instead of loading and storing the output row for every entry. Wider rows take several passes
// over the bag's entries; after the first pass those rows are in L1/L2.
constexpr std::int64_t kTile = 64;

// Adds `scale` × row (or the row, without weights) to acc[0, width); width == kTile is the
// register-resident case the compiler unrolls.
inline void add_row(float* acc, const float* row, std::int64_t width, const float* scale) {
  if (width == kTile) {
    if (scale != nullptr) {
      for (std::int64_t c = 0; c < kTile; ++c) acc[c] += *scale * row[c];
    } else {
      for (std::int64_t c = 0; c < kTile; ++c) acc[c] += row[c];
    }
  } else if (scale != nullptr) {
    for (std::int64_t c = 0; c < width; ++c) acc[c] += *scale * row[c];
  } else {
    for (std::int64_t c = 0; c < width; ++c) acc[c] += row[c];
  }
}

// Sum, mean and sqrtn of one bag: Σ wᵢ·rowᵢ left to right in position order from 0.0f, then
// divided by the mode's denominator: the same operations in the same order as the CUDA kernel.
template <class Index>
void weighted_bag(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t begin,
                  std::int64_t end, std::int64_t entries, const float* sample_weights, PoolingMode mode,
                  std::int64_t padding_idx, float* pooled) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  detail::BagStats stats;
  for (std::int64_t j = begin; j < end; ++j) {
    if (static_cast<std::int64_t>(ids[j]) != padding_idx) stats.add(sample_weights != nullptr ? sample_weights[j] : 1.0f);
  }
  const float denominator = detail::pool_denominator(mode, stats);
  for (std::int64_t tile = 0; tile < dim; tile += kTile) {
    const std::int64_t width = std::min(kTile, dim - tile);
    alignas(64) float acc[kTile] = {};
    for (std::int64_t j = begin; j < end; ++j) {
      if (tile == 0 && j + kPrefetchDistance < entries) {
        const auto ahead = static_cast<std::int64_t>(ids[j + kPrefetchDistance]);
        if (in_range(ahead, input_dim)) prefetch_row<CacheLevel::l2>(weights + ahead * dim, row_bytes);
      }
      const auto id = static_cast<std::int64_t>(ids[j]);
      if (id == padding_idx || !in_range(id, input_dim)) continue;  // padding: skipped; outside: zeros
      add_row(acc, weights + id * dim + tile, width, sample_weights != nullptr ? sample_weights + j : nullptr);
    }
    for (std::int64_t c = 0; c < width; ++c) {
      pooled[tile + c] = denominator != 1.0f ? detail::pool_finish(acc[c], denominator) : acc[c];
    }
  }
}

// Max of one bag: element-wise, the first counted entry initialising; ids outside the table are
// rows of zeros; an empty bag is zeros.
template <class Index>
void max_bag(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t begin,
             std::int64_t end, std::int64_t padding_idx, float* pooled) {
  std::fill(pooled, pooled + dim, 0.0f);
  bool seen = false;
  for (std::int64_t j = begin; j < end; ++j) {
    const auto id = static_cast<std::int64_t>(ids[j]);
    if (id == padding_idx) continue;
    const float* row = in_range(id, input_dim) ? weights + id * dim : nullptr;
    for (std::int64_t c = 0; c < dim; ++c) {
      const float v = row != nullptr ? row[c] : 0.0f;
      pooled[c] = !seen || v > pooled[c] ? v : pooled[c];
    }
    seen = true;
  }
}

}  // namespace

template <class Index>
void pooled_lookup(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                   const std::int64_t* offsets, std::int64_t bags, const float* sample_weights,
                   PoolingMode mode, std::int64_t padding_idx, float* out) {
  const std::int64_t entries = offsets[bags];
  // Bags differ in size, so threads take them in small dynamic chunks; each bag's arithmetic is
  // sequential, so the result does not depend on the schedule.
#pragma omp parallel for schedule(dynamic, 64) if (entries * dim >= kParallelMinFloats)
  for (std::int64_t bag = 0; bag < bags; ++bag) {
    if (mode == PoolingMode::max) {
      max_bag(weights, input_dim, dim, ids, offsets[bag], offsets[bag + 1], padding_idx, out + bag * dim);
    } else {
      weighted_bag(weights, input_dim, dim, ids, offsets[bag], offsets[bag + 1], entries, sample_weights, mode,
                   padding_idx, out + bag * dim);
    }
  }
}

template void pooled_lookup(const float*, std::int64_t, std::int64_t, const std::int32_t*, const std::int64_t*,
                            std::int64_t, const float*, PoolingMode, std::int64_t, float*);
template void pooled_lookup(const float*, std::int64_t, std::int64_t, const std::int64_t*, const std::int64_t*,
                            std::int64_t, const float*, PoolingMode, std::int64_t, float*);

}  // namespace embedkit::cpu
