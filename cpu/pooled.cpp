#include "pooled.hpp"

#include <embedkit/detail/pooling_math.hpp>

#include "index_scan.hpp"
#include "parallel.hpp"
#include "prefetch.hpp"

#include <algorithm>

namespace embedkit::cpu {

template <class Index>
void pooled_lookup(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                   const std::int64_t* offsets, std::int64_t bags, const float* sample_weights,
                   PoolingMode mode, std::int64_t padding_idx, float* out) {
  const std::int64_t entries = offsets[bags];
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  // Bags differ in size, so threads take them in small dynamic chunks; each bag's arithmetic is
  // sequential, so the result does not depend on the schedule.
#pragma omp parallel for schedule(dynamic, 64) if (entries * dim >= kParallelMinFloats)
  for (std::int64_t bag = 0; bag < bags; ++bag) {
    float* pooled = out + bag * dim;
    std::fill(pooled, pooled + dim, 0.0f);
    detail::BagStats stats;
    bool seen = false;  // max: the first counted entry initialises the maximum
    for (std::int64_t j = offsets[bag]; j < offsets[bag + 1]; ++j) {
      if (j + kPrefetchDistance < entries) {
        const auto ahead = static_cast<std::int64_t>(ids[j + kPrefetchDistance]);
        if (in_range(ahead, input_dim)) prefetch_row(weights + ahead * dim, row_bytes);
      }
      const std::int64_t id = static_cast<std::int64_t>(ids[j]);
      if (id == padding_idx) continue;
      const float w = sample_weights != nullptr ? sample_weights[j] : 1.0f;
      stats.add(w);
      const float* row = in_range(id, input_dim) ? weights + id * dim : nullptr;  // nullptr: zeros
      if (mode == PoolingMode::max) {
        for (std::int64_t c = 0; c < dim; ++c) {
          const float v = row != nullptr ? row[c] : 0.0f;
          pooled[c] = !seen || v > pooled[c] ? v : pooled[c];
        }
        seen = true;
      } else if (row != nullptr) {
        if (sample_weights != nullptr) {
          for (std::int64_t c = 0; c < dim; ++c) pooled[c] += w * row[c];
        } else {
          for (std::int64_t c = 0; c < dim; ++c) pooled[c] += row[c];
        }
      }
    }
    const float denominator = detail::pool_denominator(mode, stats);
    if (denominator != 1.0f) {
      for (std::int64_t c = 0; c < dim; ++c) pooled[c] = detail::pool_finish(pooled[c], denominator);
    }
  }
}

template void pooled_lookup(const float*, std::int64_t, std::int64_t, const std::int32_t*, const std::int64_t*,
                            std::int64_t, const float*, PoolingMode, std::int64_t, float*);
template void pooled_lookup(const float*, std::int64_t, std::int64_t, const std::int64_t*, const std::int64_t*,
                            std::int64_t, const float*, PoolingMode, std::int64_t, float*);

}  // namespace embedkit::cpu
