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

// A pooled lookup's inputs, as pooled_lookup takes them.
template <class Index>
struct Batch {
  const float* weights;
  std::int64_t input_dim, dim;
  const Index* ids;
  const std::int64_t* offsets;
  std::int64_t entries;         // offsets[bags], for the prefetch ahead
  const float* sample_weights;  // NULL: all ones
  PoolingMode mode;
  std::int64_t padding_idx;
  float* out;
};

// Columns [tile, tile + width) of the Σ wᵢ·rowᵢ of entries [begin, end), left to right from 0.0f,
// divided by `denominator` into pooled. With kFull, width is kTile, a constant: the compiler
// unrolls the columns and keeps the accumulator in vector registers for the whole bag. The first
// tile asks for the rows kPrefetchDistance entries ahead.
template <bool kFull, class Index>
[[gnu::always_inline]] inline void sum_tile(const Batch<Index>& batch, std::int64_t begin, std::int64_t end,
                                            std::int64_t tile, std::int64_t width, float denominator,
                                            float* pooled) {
  const std::int64_t columns = kFull ? kTile : width;
  const std::int64_t dim = batch.dim;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  alignas(64) float acc[kTile] = {};
  for (std::int64_t j = begin; j < end; ++j) {
    if (tile == 0 && j + kPrefetchDistance < batch.entries) {
      const auto ahead = static_cast<std::int64_t>(batch.ids[j + kPrefetchDistance]);
      if (in_range(ahead, batch.input_dim)) prefetch_row<CacheLevel::l2>(batch.weights + ahead * dim, row_bytes);
    }
    const auto id = static_cast<std::int64_t>(batch.ids[j]);
    if (id == batch.padding_idx || !in_range(id, batch.input_dim)) continue;  // padding: skipped; outside: zeros
    const float* row = batch.weights + id * dim + tile;
    if (batch.sample_weights != nullptr) {
      const float w = batch.sample_weights[j];
      for (std::int64_t c = 0; c < columns; ++c) acc[c] += w * row[c];
    } else {
      for (std::int64_t c = 0; c < columns; ++c) acc[c] += row[c];
    }
  }
  if (denominator == 1.0f) {
    for (std::int64_t c = 0; c < columns; ++c) pooled[tile + c] = acc[c];
  } else {
    for (std::int64_t c = 0; c < columns; ++c) pooled[tile + c] = detail::pool_finish(acc[c], denominator);
  }
}

// Sum, mean and sqrtn of bags [first, last): Σ wᵢ·rowᵢ left to right in position order from 0.0f,
// then divided by the mode's denominator: the same operations in the same order as the CUDA kernel.
template <class Index>
[[gnu::always_inline]] inline void weighted_bags(const Batch<Index>& shared, std::int64_t first, std::int64_t last) {
  const Batch<Index> batch = shared;  // a local copy: the compiler keeps the fields in registers
  for (std::int64_t bag = first; bag < last; ++bag) {
    const std::int64_t begin = batch.offsets[bag], end = batch.offsets[bag + 1];
    const float denominator =
        detail::bag_denominator(batch.mode, batch.ids, begin, end, batch.sample_weights, batch.padding_idx);
    float* pooled = batch.out + bag * batch.dim;
    for (std::int64_t tile = 0; tile < batch.dim; tile += kTile) {
      const std::int64_t width = std::min(kTile, batch.dim - tile);
      if (width == kTile) {
        sum_tile<true>(batch, begin, end, tile, width, denominator, pooled);
      } else {
        sum_tile<false>(batch, begin, end, tile, width, denominator, pooled);
      }
    }
  }
}

// weighted_bags compiled for SSE2 and for AVX2, called once per chunk of bags. With the row
// prefetches hiding most of the memory latency, the loop's own work shows. The 64-column
// accumulator: AVX2's 16 registers of 8 floats hold it with room for the row; SSE2's 16 of 4
// would all go to it, so the loop loads and stores it for every entry; pooled sums of bags of 32 at dim 64 over a 2 GiB table, the two
// alternating call by call in one process (30 calls each, 2 threads, AMD EPYC), took 28.7 ms best
// and 32.7 median with AVX2 against 36.3 and 44.6 with SSE2 (AVX-512 was level with AVX2 in a
// standalone copy of the loop). And a call per bag, the batch's fields reloaded for each, made
// bags of one entry 1.5x slower: 147.6 / 157.0 ms against 100.7 / 112.3 for 2^21 bags (bags of
// 8-128 level).
template <class Index>
void weighted_bags_baseline(const Batch<Index>& batch, std::int64_t first, std::int64_t last) {
  weighted_bags(batch, first, last);
}

#if EMBEDKIT_HAVE_AVX2_CLONES
template <class Index>
EMBEDKIT_TARGET_AVX2 void weighted_bags_avx2(const Batch<Index>& batch, std::int64_t first, std::int64_t last) {
  weighted_bags(batch, first, last);
}
#endif

template <class Index>
using WeightedBags = void (*)(const Batch<Index>&, std::int64_t, std::int64_t);

// The clone compiled for `isa`.
template <class Index>
WeightedBags<Index> weighted_bags_for(Isa isa) {
  if (!supports(isa)) throw Error(Status::internal, "pooled lookup asked for an instruction set this CPU lacks");
#if EMBEDKIT_HAVE_AVX2_CLONES
  if (isa == Isa::avx2) return weighted_bags_avx2<Index>;
#endif
  return weighted_bags_baseline<Index>;
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
  // Bags differ in size, so threads take them in small dynamic chunks; each bag's arithmetic is
  // sequential, so the result does not depend on the schedule.
  constexpr std::int64_t kChunk = 64;
  if (mode == PoolingMode::max) {
#pragma omp parallel for schedule(dynamic, kChunk) if (entries * dim >= kParallelMinFloats)
    for (std::int64_t bag = 0; bag < bags; ++bag) {
      max_bag(weights, input_dim, dim, ids, offsets[bag], offsets[bag + 1], padding_idx, out + bag * dim);
    }
    return;
  }
  const Batch<Index> batch{weights, input_dim, dim, ids, offsets, entries, sample_weights, mode, padding_idx, out};
  const WeightedBags<Index> weighted_bags_clone = weighted_bags_for<Index>(isa);
  const std::int64_t chunks = (bags + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(dynamic, 1) if (entries * dim >= kParallelMinFloats)
  for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
    weighted_bags_clone(batch, chunk * kChunk, std::min(bags, (chunk + 1) * kChunk));
  }
}

template void pooled_lookup(const float*, std::int64_t, std::int64_t, const std::int32_t*, const std::int64_t*,
                            std::int64_t, const float*, PoolingMode, std::int64_t, float*, Isa);
template void pooled_lookup(const float*, std::int64_t, std::int64_t, const std::int64_t*, const std::int64_t*,
                            std::int64_t, const float*, PoolingMode, std::int64_t, float*, Isa);

}  // namespace embedkit::cpu
