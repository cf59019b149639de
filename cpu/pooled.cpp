#include "pooled.hpp"

#include <embedkit/detail/pooling_math.hpp>
#include <embedkit/status.hpp>

#include "index_scan.hpp"
#include "isa.hpp"
#include "parallel.hpp"
#include "prefetch.hpp"

#include <algorithm>

namespace embedkit::cpu {
namespace {

// Columns a bag accumulates at a time, in a local array the compiler keeps in vector registers
// instead of loading and storing the output row for every entry. Wider rows take several passes
// over the bag's entries; after the first pass those rows are in L1/L2.
constexpr std::int64_t kTile = 64;

// One bag of a pooled lookup: its entries [begin, end) and what they are read with.
template <class Index>
struct Bag {
  const float* weights;
  std::int64_t input_dim, dim;
  const Index* ids;
  std::int64_t begin, end, entries;  // entries: of the whole batch, for the prefetch ahead
  const float* sample_weights;       // NULL: all ones
  std::int64_t padding_idx;
};

// Columns [tile, tile + width) of the bag's Σ wᵢ·rowᵢ, left to right from 0.0f, divided by
// `denominator` into pooled. With kFull, width is kTile, a constant: the compiler unrolls the
// columns and keeps the accumulator in vector registers for the whole bag. The first tile asks
// for the rows kPrefetchDistance entries ahead.
template <bool kFull, class Index>
[[gnu::always_inline]] inline void sum_tile(const Bag<Index>& bag, std::int64_t tile, std::int64_t width,
                                            float denominator, float* pooled) {
  const std::int64_t columns = kFull ? kTile : width;
  const std::size_t row_bytes = static_cast<std::size_t>(bag.dim) * sizeof(float);
  alignas(64) float acc[kTile] = {};
  for (std::int64_t j = bag.begin; j < bag.end; ++j) {
    if (tile == 0 && j + kPrefetchDistance < bag.entries) {
      const auto ahead = static_cast<std::int64_t>(bag.ids[j + kPrefetchDistance]);
      if (in_range(ahead, bag.input_dim)) prefetch_row<CacheLevel::l2>(bag.weights + ahead * bag.dim, row_bytes);
    }
    const auto id = static_cast<std::int64_t>(bag.ids[j]);
    if (id == bag.padding_idx || !in_range(id, bag.input_dim)) continue;  // padding: skipped; outside: zeros
    const float* row = bag.weights + id * bag.dim + tile;
    if (bag.sample_weights != nullptr) {
      const float w = bag.sample_weights[j];
      for (std::int64_t c = 0; c < columns; ++c) acc[c] += w * row[c];
    } else {
      for (std::int64_t c = 0; c < columns; ++c) acc[c] += row[c];
    }
  }
  for (std::int64_t c = 0; c < columns; ++c) {
    pooled[tile + c] = denominator != 1.0f ? detail::pool_finish(acc[c], denominator) : acc[c];
  }
}

// Sum, mean and sqrtn of one bag: Σ wᵢ·rowᵢ left to right in position order from 0.0f, then
// divided by the mode's denominator: the same operations in the same order as the CUDA kernel.
template <class Index>
[[gnu::always_inline]] inline void weighted_bag(const float* weights, std::int64_t input_dim, std::int64_t dim,
                                                const Index* ids, std::int64_t begin, std::int64_t end,
                                                std::int64_t entries, const float* sample_weights, PoolingMode mode,
                                                std::int64_t padding_idx, float* pooled) {
  detail::BagStats stats;
  for (std::int64_t j = begin; j < end; ++j) {
    if (static_cast<std::int64_t>(ids[j]) != padding_idx) stats.add(sample_weights != nullptr ? sample_weights[j] : 1.0f);
  }
  const float denominator = detail::pool_denominator(mode, stats);
  const Bag<Index> bag{weights, input_dim, dim, ids, begin, end, entries, sample_weights, padding_idx};
  for (std::int64_t tile = 0; tile < dim; tile += kTile) {
    const std::int64_t width = std::min(kTile, dim - tile);
    if (width == kTile) {
      sum_tile<true>(bag, tile, width, denominator, pooled);
    } else {
      sum_tile<false>(bag, tile, width, denominator, pooled);
    }
  }
}

// weighted_bag compiled for SSE2 and for AVX2. With the row prefetches hiding most of the memory
// latency, the 64-column accumulator matters: AVX2's 16 registers of 8 floats hold it, SSE2's of 4
// cannot (a load and a store per entry and column group). Pooled sums of bags of 32 at dim 64 over
// a 2 GiB table, the two alternating call by call in one process (30 calls each, 2 threads, AMD
// EPYC): 28.7 ms best and 32.7 median with AVX2 against 36.3 and 44.6 with SSE2. AVX-512 was level
// with AVX2 (a standalone copy of the loop: 22.9 / 25.5 ms against 22.8 / 25.6).
template <class Index>
void weighted_bag_baseline(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                       std::int64_t begin, std::int64_t end, std::int64_t entries, const float* sample_weights,
                       PoolingMode mode, std::int64_t padding_idx, float* pooled) {
  weighted_bag(weights, input_dim, dim, ids, begin, end, entries, sample_weights, mode, padding_idx, pooled);
}

#if EMBEDKIT_HAVE_AVX2_CLONES
template <class Index>
EMBEDKIT_TARGET_AVX2 void weighted_bag_avx2(const float* weights, std::int64_t input_dim, std::int64_t dim,
                                            const Index* ids, std::int64_t begin, std::int64_t end,
                                            std::int64_t entries, const float* sample_weights, PoolingMode mode,
                                            std::int64_t padding_idx, float* pooled) {
  weighted_bag(weights, input_dim, dim, ids, begin, end, entries, sample_weights, mode, padding_idx, pooled);
}
#endif

template <class Index>
using WeightedBag = void (*)(const float*, std::int64_t, std::int64_t, const Index*, std::int64_t, std::int64_t,
                             std::int64_t, const float*, PoolingMode, std::int64_t, float*);

// The clone compiled for `isa`.
template <class Index>
WeightedBag<Index> weighted_bag_for(Isa isa) {
  if (!supports(isa)) throw Error(Status::internal, "pooled lookup asked for an instruction set this CPU lacks");
#if EMBEDKIT_HAVE_AVX2_CLONES
  if (isa == Isa::avx2) return weighted_bag_avx2<Index>;
#endif
  return weighted_bag_baseline<Index>;
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
                   PoolingMode mode, std::int64_t padding_idx, float* out, Isa isa) {
  const std::int64_t entries = offsets[bags];
  const WeightedBag<Index> weighted_bag_clone = weighted_bag_for<Index>(isa);
  // Bags differ in size, so threads take them in small dynamic chunks; each bag's arithmetic is
  // sequential, so the result does not depend on the schedule.
#pragma omp parallel for schedule(dynamic, 64) if (entries * dim >= kParallelMinFloats)
  for (std::int64_t bag = 0; bag < bags; ++bag) {
    if (mode == PoolingMode::max) {
      max_bag(weights, input_dim, dim, ids, offsets[bag], offsets[bag + 1], padding_idx, out + bag * dim);
    } else {
      weighted_bag_clone(weights, input_dim, dim, ids, offsets[bag], offsets[bag + 1], entries, sample_weights,
                         mode, padding_idx, out + bag * dim);
    }
  }
}

template void pooled_lookup(const float*, std::int64_t, std::int64_t, const std::int32_t*, const std::int64_t*,
                            std::int64_t, const float*, PoolingMode, std::int64_t, float*, Isa);
template void pooled_lookup(const float*, std::int64_t, std::int64_t, const std::int64_t*, const std::int64_t*,
                            std::int64_t, const float*, PoolingMode, std::int64_t, float*, Isa);

}  // namespace embedkit::cpu
