#include "segments.hpp"

#include "index_scan.hpp"
#include "radix_sort.hpp"

#include <algorithm>
#include <bit>
#include <utility>

namespace embedkit::cpu {
namespace {

int bits_for(std::uint64_t values) { return std::max(1, static_cast<int>(std::bit_width(values - 1))); }

}  // namespace

template <class Index>
Segments group_positions(const Index* ids, std::int64_t count, std::int64_t input_dim, std::int64_t padding_idx) {
  Segments segments;
  segments.run_begin.push_back(0);
  if (count == 0) return segments;
  const int key_bits = bits_for(static_cast<std::uint64_t>(input_dim));
  const int position_bits = bits_for(static_cast<std::uint64_t>(count));
  const auto kept = [&](std::int64_t i) {
    const std::int64_t id = static_cast<std::int64_t>(ids[i]);
    return in_range(id, input_dim) && id != padding_idx;
  };
  if (key_bits + position_bits <= 64) {
    // (id, position) packed in one word: sorting the id bits stably keeps positions increasing.
    std::vector<std::uint64_t> packed, scratch;
    packed.reserve(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
      if (kept(i)) packed.push_back(static_cast<std::uint64_t>(ids[i]) << position_bits | static_cast<std::uint64_t>(i));
    }
    radix_sort_bits(packed, scratch, position_bits, key_bits);
    const std::uint64_t position_mask = (std::uint64_t{1} << position_bits) - 1;
    segments.positions.resize(packed.size());
    for (std::size_t k = 0; k < packed.size(); ++k) {
      const auto id = static_cast<std::int64_t>(packed[k] >> position_bits);
      segments.positions[k] = static_cast<std::int64_t>(packed[k] & position_mask);
      if (segments.unique_ids.empty() || segments.unique_ids.back() != id) {
        if (!segments.unique_ids.empty()) segments.run_begin.push_back(static_cast<std::int64_t>(k));
        segments.unique_ids.push_back(id);
      }
    }
  } else {
    // Ids and positions too wide to share a word: sort pairs (distinct, so any sort agrees).
    std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
    for (std::int64_t i = 0; i < count; ++i) {
      if (kept(i)) pairs.emplace_back(static_cast<std::int64_t>(ids[i]), i);
    }
    std::sort(pairs.begin(), pairs.end());
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      segments.positions.push_back(pairs[k].second);
      if (segments.unique_ids.empty() || segments.unique_ids.back() != pairs[k].first) {
        if (!segments.unique_ids.empty()) segments.run_begin.push_back(static_cast<std::int64_t>(k));
        segments.unique_ids.push_back(pairs[k].first);
      }
    }
  }
  if (!segments.unique_ids.empty()) segments.run_begin.push_back(static_cast<std::int64_t>(segments.positions.size()));
  return segments;
}

template Segments group_positions(const std::int32_t*, std::int64_t, std::int64_t, std::int64_t);
template Segments group_positions(const std::int64_t*, std::int64_t, std::int64_t, std::int64_t);

}  // namespace embedkit::cpu
