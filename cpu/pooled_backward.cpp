#include "pooled_backward.hpp"

#include <embedkit/detail/pooling_math.hpp>
#include <embedkit/detail/stored_row.hpp>
#include <embedkit/status.hpp>

#include "index_scan.hpp"
#include "parallel.hpp"

#include <algorithm>

namespace embedkit::cpu {

template <class Index>
void pooled_entry_scales(const detail::PooledBatch<Index>& batch, float* scales, std::int64_t* bag_of) {
#pragma omp parallel for schedule(dynamic, 64) if (batch.entries() >= kParallelMinIds)
  for (std::int64_t bag = 0; bag < batch.bags; ++bag) {
    const float denominator = batch.denominator(bag);
    for (std::int64_t j = batch.offsets[bag]; j < batch.offsets[bag + 1]; ++j) {
      scales[j] = batch.entry_scale(j, denominator);
      bag_of[j] = bag;
    }
  }
}

template <class Index>
void pooled_bag_scales(const detail::PooledBatch<Index>& batch, float* scales) {
  if (batch.sample_weights != nullptr) {
    throw Error(Status::internal, "pooled_bag_scales takes a batch without per-sample weights");
  }
#pragma omp parallel for schedule(dynamic, 64) if (batch.entries() >= kParallelMinIds)
  for (std::int64_t bag = 0; bag < batch.bags; ++bag) {
    // What every counted entry of the bag receives: an entry of weight 1.
    scales[bag] = detail::entry_scale(true, 1.0f, batch.denominator(bag));
  }
}

template <class T, class Index>
void pooled_argmax(const T* weights, std::int64_t input_dim, std::int64_t dim, const detail::PooledBatch<Index>& batch,
                   std::int64_t* argmax) {
  if (!detail::picks_entry(batch.mode)) {
    throw Error(Status::internal, "pooled_argmax takes a batch whose mode picks entries (max)");
  }
  // The value column c of entry j holds, read again from its row (zero for an id outside the table).
  const auto value = [&](std::int64_t j, std::int64_t c) {
    const std::int64_t id = batch.id(j);
    return id_in_range(id, input_dim) ? detail::widen(weights[id * dim + c]) : 0.0f;
  };
#pragma omp parallel for schedule(dynamic, 64) if (batch.entries() * dim >= kParallelMinFloats)
  for (std::int64_t bag = 0; bag < batch.bags; ++bag) {
    std::int64_t* best = argmax + bag * dim;
    std::fill(best, best + dim, std::int64_t{-1});
    for (std::int64_t j = batch.offsets[bag]; j < batch.offsets[bag + 1]; ++j) {
      if (!batch.counted(j)) continue;
      const std::int64_t id = batch.id(j);
      const T* row = id_in_range(id, input_dim) ? weights + id * dim : nullptr;  // nullptr: zeros
      for (std::int64_t c = 0; c < dim; ++c) {
        const float v = row != nullptr ? detail::widen(row[c]) : 0.0f;
        const bool first = best[c] < 0;
        if (detail::replaces_pick(batch.mode, v, first ? 0.0f : value(best[c], c), first)) best[c] = j;
      }
    }
  }
}

template void pooled_entry_scales(const detail::PooledBatch<std::int32_t>&, float*, std::int64_t*);
template void pooled_entry_scales(const detail::PooledBatch<std::int64_t>&, float*, std::int64_t*);
template void pooled_bag_scales(const detail::PooledBatch<std::int32_t>&, float*);
template void pooled_bag_scales(const detail::PooledBatch<std::int64_t>&, float*);
#define EMBEDKIT_POOLED_ARGMAX(T)                                                                             \
  template void pooled_argmax(const T*, std::int64_t, std::int64_t, const detail::PooledBatch<std::int32_t>&, \
                              std::int64_t*);                                                                 \
  template void pooled_argmax(const T*, std::int64_t, std::int64_t, const detail::PooledBatch<std::int64_t>&, \
                              std::int64_t*);
EMBEDKIT_POOLED_ARGMAX(float)
EMBEDKIT_POOLED_ARGMAX(detail::float16)
EMBEDKIT_POOLED_ARGMAX(detail::bfloat16)
#undef EMBEDKIT_POOLED_ARGMAX

}  // namespace embedkit::cpu
