#pragma once
// The gradient row each entry of a pooled batch receives: the very values the backends' pooled
// fold sums (the bag's gradient times the entry's scale or, for max, the column's gradient at its
// argmax entry, zeros elsewhere), so folding them as a plain batch gives the same bits. Used where
// the pooled fold cannot run whole: a train step retried in chunks, and sharded tables, whose
// owners fold rows that the requesting rank computed.

#include <embedkit/detail/padding.hpp>
#include <embedkit/pooling.hpp>

#include <cstdint>
#include <span>
#include <vector>

namespace embedkit::detail {

/// The rows a batch reads: `ids` sorted and distinct, `rows` their rows (ids.size() × dim).
struct CompactRows {
  std::vector<std::int64_t> ids;
  std::vector<float> rows;
};

/// count × dim entry gradient rows of a pooled batch (offsets, per_sample_weights and padding as
/// lookup_pooled takes them). Max needs `read`: the rows of distinct_in_range(ids) (core/ids.hpp); an id outside
/// it reads as zeros. Other modes ignore `read`.
template <class Index>
std::vector<float> pooled_entry_gradients(const Index* ids, std::int64_t count, std::span<const std::int64_t> offsets,
                                          std::int64_t bags, PoolingMode mode,
                                          std::span<const float> per_sample_weights, std::span<const float> grad_bags,
                                          std::int64_t dim, Padding padding, const CompactRows& read);

}  // namespace embedkit::detail
