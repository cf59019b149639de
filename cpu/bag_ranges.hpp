#pragma once
// Cuts the bags of a pooled batch into contiguous ranges of about equal work, for the loops that
// give each thread whole ranges: a range is read in order, so the row prefetch of its entries runs
// ahead within it, where chunks of a few bags handed out in turn leave it behind at every chunk.

#include <cstdint>

namespace embedkit::cpu {

/// The first bag of range `part` of `parts` over bags [0, bags) with CSR `offsets`: a bag's work is
/// its entries plus one (its output row), and each range starts at the first bag whose preceding
/// work reaches its share of the total. parts in [1, 2^31), part in [0, parts] (part == parts
/// gives `bags`), offsets[bags] + bags within int64.
inline std::int64_t bag_range_begin(const std::int64_t* offsets, std::int64_t bags, std::int64_t part,
                                    std::int64_t parts) {
  // Work before bag b, offsets[b] + b, rises strictly with b: a binary search finds the bag.
  const std::int64_t total = offsets[bags] + bags;
  const std::int64_t share = total / parts * part + total % parts * part / parts;  // total·part/parts, no overflow
  std::int64_t low = 0, high = bags;
  while (low < high) {
    const std::int64_t middle = low + (high - low) / 2;
    if (offsets[middle] + middle < share) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

}  // namespace embedkit::cpu
