#include "table/pooled_entry_gradients.hpp"

#include "backend/backends.hpp"
#include "core/ids.hpp"

#include <algorithm>

namespace embedkit::detail {

template <class Index>
std::vector<float> pooled_entry_gradients(const Index* ids, std::int64_t count, std::span<const std::int64_t> offsets,
                                          std::int64_t bags, PoolingMode mode,
                                          std::span<const float> per_sample_weights, std::span<const float> grad_bags,
                                          std::int64_t dim, Padding padding, const CompactRows& read) {
  std::vector<std::int64_t> bag_of(static_cast<std::size_t>(count));
  std::vector<float> rows(static_cast<std::size_t>(count * dim), 0.0f);
  if (!picks_entry(mode)) {
    std::vector<float> scales(static_cast<std::size_t>(count));
    host_ops().pooled_entry_scales(PooledBatch<Index>{ids, offsets.data(), bags,
                                                      per_sample_weights.empty() ? nullptr : per_sample_weights.data(),
                                                      mode, padding},
                                   scales.data(), bag_of.data());
    for (std::int64_t p = 0; p < count; ++p) {
      for (std::int64_t c = 0; c < dim; ++c) rows[p * dim + c] = grad_bags[bag_of[p] * dim + c] * scales[p];
    }
    return rows;
  }
  // The argmax over the rows read, each entry naming its row there; ids outside read as zeros.
  const auto outside = static_cast<std::int64_t>(read.ids.size());
  const auto slot = [&](std::int64_t id) {
    const std::int64_t at = slot_in(read.ids, id);
    return at < 0 ? outside : at;
  };
  std::vector<std::int64_t> compact_ids(static_cast<std::size_t>(count));
  for (std::int64_t p = 0; p < count; ++p) compact_ids[p] = slot(static_cast<std::int64_t>(ids[p]));
  const Padding padding_slot{padding.enabled && slot(padding.id) != outside, padding.enabled ? slot(padding.id) : 0};
  std::vector<std::int64_t> argmax(static_cast<std::size_t>(bags * dim));
  host_ops().pooled_argmax(
      {read.rows.data(), outside, dim},
      PooledBatch<std::int64_t>{compact_ids.data(), offsets.data(), bags, nullptr, mode, padding_slot}, argmax.data());
  for (std::int64_t b = 0; b < bags; ++b) {
    for (std::int64_t c = 0; c < dim; ++c) {
      if (argmax[b * dim + c] >= 0) rows[argmax[b * dim + c] * dim + c] = grad_bags[b * dim + c];
    }
  }
  return rows;
}

template std::vector<float> pooled_entry_gradients(const std::int32_t*, std::int64_t, std::span<const std::int64_t>,
                                                   std::int64_t, PoolingMode, std::span<const float>,
                                                   std::span<const float>, std::int64_t, Padding, const CompactRows&);
template std::vector<float> pooled_entry_gradients(const std::int64_t*, std::int64_t, std::span<const std::int64_t>,
                                                   std::int64_t, PoolingMode, std::span<const float>,
                                                   std::span<const float>, std::int64_t, Padding, const CompactRows&);

}  // namespace embedkit::detail
