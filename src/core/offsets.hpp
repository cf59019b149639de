#pragma once
// Validation of the CSR offsets that cut a pooled lookup's ids into bags.

#include <cstdint>
#include <span>

namespace embedkit::detail {

/// Throws Error(invalid_argument) naming the first bad entry unless `offsets` holds at least one
/// entry, starts at 0, never decreases, and ends at `index_count`.
void check_offsets(std::span<const std::int64_t> offsets, std::int64_t index_count);

}  // namespace embedkit::detail
