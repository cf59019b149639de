#pragma once
// Keras's mask_zero mask on the CPU: mask[i] = ids[i] != 0.

#include <cstdint>

namespace embedkit::cpu {

/// Writes 1 where ids[i] != 0 and 0 where it is 0, for i < count.
template <class Index>
void nonzero_mask(const Index* ids, std::int64_t count, std::uint8_t* mask);

}  // namespace embedkit::cpu
