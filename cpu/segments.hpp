#pragma once
// Groups the positions of a batch by id: sort (id, position), or (id, bag) for a pooled batch, on
// the id's bits, then run-length encode. The first step of every sparse gradient, as on the GPU.

#include <embedkit/detail/padding.hpp>

#include "core/recycled_vector.hpp"

#include <cstdint>
#include <vector>

namespace embedkit::cpu {

/// The positions of each distinct id, in increasing order: positions[run_begin[u] .. run_begin[u+1])
/// looked up unique_ids[u]. From group_bags, the slots hold the positions' bags instead.
/// Batch-sized, so their memory is recycled from step to step (core/recycled_vector.hpp).
struct Segments {
  detail::RecycledVector<std::int64_t> unique_ids;
  detail::RecycledVector<std::int64_t> run_begin;
  detail::RecycledVector<std::int64_t> positions;
  std::int64_t size() const { return static_cast<std::int64_t>(unique_ids.size()); }
};

/// Groups positions 0..count-1 of `ids` by id, leaving out ids outside [0, input_dim) and
/// `padding`: they receive no gradient.
template <class Index>
Segments group_positions(const Index* ids, std::int64_t count, std::int64_t input_dim, detail::Padding padding);

/// group_positions of a pooled batch, each slot holding the bag of its position instead of the
/// position (the slots of an id keep position order, since bags only grow with position). For a
/// fold whose share depends on the bag alone, it spares a batch-sized bag-of-position table and
/// the gather through it.
template <class Index>
Segments group_bags(const Index* ids, const std::int64_t* offsets, std::int64_t bags, std::int64_t input_dim,
                    detail::Padding padding);

}  // namespace embedkit::cpu
