#include "pooled_backward.hpp"

#include <embedkit/detail/pooling_math.hpp>

#include "index_scan.hpp"
#include "parallel.hpp"

#include <algorithm>

namespace embedkit::cpu {

template <class Index>
void pooled_entry_scales(const Index* ids, const std::int64_t* offsets, std::int64_t bags, const float* sample_weights,
                         PoolingMode mode, detail::Padding padding, float* scales, std::int64_t* bag_of) {
#pragma omp parallel for schedule(dynamic, 64) if (offsets[bags] >= kParallelMinIds)
  for (std::int64_t bag = 0; bag < bags; ++bag) {
    const float denominator =
        detail::bag_denominator(mode, ids, offsets[bag], offsets[bag + 1], sample_weights, padding);
    for (std::int64_t j = offsets[bag]; j < offsets[bag + 1]; ++j) {
      const bool counted = !padding.is(static_cast<std::int64_t>(ids[j])) && denominator != 0.0f;
      const float w = sample_weights != nullptr ? sample_weights[j] : 1.0f;
      scales[j] = counted ? w / denominator : 0.0f;
      bag_of[j] = bag;
    }
  }
}

template <class Index>
void pooled_bag_scales(const Index* ids, const std::int64_t* offsets, std::int64_t bags, PoolingMode mode,
                       detail::Padding padding, float* scales) {
#pragma omp parallel for schedule(dynamic, 64) if (offsets[bags] >= kParallelMinIds)
  for (std::int64_t bag = 0; bag < bags; ++bag) {
    const float denominator = detail::bag_denominator(mode, ids, offsets[bag], offsets[bag + 1], nullptr, padding);
    scales[bag] = denominator != 0.0f ? 1.0f / denominator : 0.0f;
  }
}

template <class Index>
void pooled_argmax(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                   const std::int64_t* offsets, std::int64_t bags, detail::Padding padding, std::int64_t* argmax) {
#pragma omp parallel for schedule(dynamic, 64) if (offsets[bags] * dim >= kParallelMinFloats)
  for (std::int64_t bag = 0; bag < bags; ++bag) {
    std::int64_t* best = argmax + bag * dim;
    std::fill(best, best + dim, std::int64_t{-1});
    for (std::int64_t j = offsets[bag]; j < offsets[bag + 1]; ++j) {
      const std::int64_t id = static_cast<std::int64_t>(ids[j]);
      if (padding.is(id)) continue;
      const float* row = id_in_range(id, input_dim) ? weights + id * dim : nullptr;  // nullptr: zeros
      for (std::int64_t c = 0; c < dim; ++c) {
        const float v = row != nullptr ? row[c] : 0.0f;
        if (best[c] < 0) {
          best[c] = j;
        } else {
          const std::int64_t at = static_cast<std::int64_t>(ids[best[c]]);
          const float current = id_in_range(at, input_dim) ? weights[at * dim + c] : 0.0f;
          if (v > current) best[c] = j;  // strictly greater: ties stay with the first position
        }
      }
    }
  }
}

template void pooled_entry_scales(const std::int32_t*, const std::int64_t*, std::int64_t, const float*, PoolingMode,
                                  detail::Padding, float*, std::int64_t*);
template void pooled_entry_scales(const std::int64_t*, const std::int64_t*, std::int64_t, const float*, PoolingMode,
                                  detail::Padding, float*, std::int64_t*);
template void pooled_bag_scales(const std::int32_t*, const std::int64_t*, std::int64_t, PoolingMode, detail::Padding,
                                float*);
template void pooled_bag_scales(const std::int64_t*, const std::int64_t*, std::int64_t, PoolingMode, detail::Padding,
                                float*);
template void pooled_argmax(const float*, std::int64_t, std::int64_t, const std::int32_t*, const std::int64_t*,
                            std::int64_t, detail::Padding, std::int64_t*);
template void pooled_argmax(const float*, std::int64_t, std::int64_t, const std::int64_t*, const std::int64_t*,
                            std::int64_t, detail::Padding, std::int64_t*);

}  // namespace embedkit::cpu
