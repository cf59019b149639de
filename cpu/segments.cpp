#include "segments.hpp"

#include "index_scan.hpp"
#include "radix_sort.hpp"

#include <algorithm>
#include <bit>
#include <utility>

namespace embedkit::cpu {
namespace {

int bits_for(std::uint64_t values) { return std::max(1, static_cast<int>(std::bit_width(values - 1))); }

// Groups the entries `for_each_entry(emit)` lists, emit(position, slot) in increasing position,
// by id; each id's slots come out in position order. `slot_limit` bounds the slots (> every slot).
template <class Index, class ForEachEntry>
Segments group_entries(const Index* ids, std::int64_t count, std::int64_t slot_limit, std::int64_t input_dim,
                       detail::Padding padding, const ForEachEntry& for_each_entry) {
  Segments segments;
  segments.run_begin.push_back(0);
  if (count == 0) return segments;
  const int key_bits = bits_for(static_cast<std::uint64_t>(input_dim));
  const int slot_bits = bits_for(static_cast<std::uint64_t>(slot_limit));
  const auto kept = [&](std::int64_t id) { return id_in_range(id, input_dim) && !padding.is(id); };
  if (key_bits + slot_bits <= 64) {
    // (id, slot) packed in one word: sorting the id bits stably keeps each id's slots in order.
    detail::RecycledVector<std::uint64_t> packed, scratch;
    packed.reserve(static_cast<std::size_t>(count));
    for_each_entry([&](std::int64_t position, std::int64_t slot) {
      const auto id = static_cast<std::int64_t>(ids[position]);
      if (kept(id)) packed.push_back(static_cast<std::uint64_t>(id) << slot_bits | static_cast<std::uint64_t>(slot));
    });
    radix_sort_bits(packed, scratch, slot_bits, key_bits);
    const std::uint64_t slot_mask = (std::uint64_t{1} << slot_bits) - 1;
    segments.positions.resize(packed.size());
    for (std::size_t k = 0; k < packed.size(); ++k) {
      const auto id = static_cast<std::int64_t>(packed[k] >> slot_bits);
      segments.positions[k] = static_cast<std::int64_t>(packed[k] & slot_mask);
      if (segments.unique_ids.empty() || segments.unique_ids.back() != id) {
        if (!segments.unique_ids.empty()) segments.run_begin.push_back(static_cast<std::int64_t>(k));
        segments.unique_ids.push_back(id);
      }
    }
  } else {
    // Ids and slots too wide to share a word: sort (id, position, slot) triples; the positions are
    // distinct, so any sort agrees.
    struct Entry {
      std::int64_t id, position, slot;
    };
    detail::RecycledVector<Entry> entries;
    entries.reserve(static_cast<std::size_t>(count));
    for_each_entry([&](std::int64_t position, std::int64_t slot) {
      const auto id = static_cast<std::int64_t>(ids[position]);
      if (kept(id)) entries.push_back({id, position, slot});
    });
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.id != b.id ? a.id < b.id : a.position < b.position; });
    for (std::size_t k = 0; k < entries.size(); ++k) {
      segments.positions.push_back(entries[k].slot);
      if (segments.unique_ids.empty() || segments.unique_ids.back() != entries[k].id) {
        if (!segments.unique_ids.empty()) segments.run_begin.push_back(static_cast<std::int64_t>(k));
        segments.unique_ids.push_back(entries[k].id);
      }
    }
  }
  if (!segments.unique_ids.empty()) segments.run_begin.push_back(static_cast<std::int64_t>(segments.positions.size()));
  return segments;
}

}  // namespace

template <class Index>
Segments group_positions(const Index* ids, std::int64_t count, std::int64_t input_dim, detail::Padding padding) {
  return group_entries(ids, count, count, input_dim, padding, [count](const auto& emit) {
    for (std::int64_t i = 0; i < count; ++i) emit(i, i);
  });
}

template <class Index>
Segments group_bags(const Index* ids, const std::int64_t* offsets, std::int64_t bags, std::int64_t input_dim,
                    detail::Padding padding) {
  return group_entries(ids, offsets[bags], bags, input_dim, padding, [offsets, bags](const auto& emit) {
    for (std::int64_t bag = 0; bag < bags; ++bag) {
      for (std::int64_t i = offsets[bag]; i < offsets[bag + 1]; ++i) emit(i, bag);
    }
  });
}

template Segments group_positions(const std::int32_t*, std::int64_t, std::int64_t, detail::Padding);
template Segments group_positions(const std::int64_t*, std::int64_t, std::int64_t, detail::Padding);
template Segments group_bags(const std::int32_t*, const std::int64_t*, std::int64_t, std::int64_t, detail::Padding);
template Segments group_bags(const std::int64_t*, const std::int64_t*, std::int64_t, std::int64_t, detail::Padding);

}  // namespace embedkit::cpu
