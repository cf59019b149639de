#pragma once
// A parallel, stable LSD radix sort of 64-bit keys on a chosen bit range only (OpenMP), as the
// CUDA path runs cub::DeviceRadixSort on only the bits input_dim needs.

#include "core/recycled_vector.hpp"

#include <cstdint>

namespace embedkit::cpu {

/// Sorts `keys` by the value of bits [low_bit, low_bit + bits), keeping the input order of equal
/// digits; `scratch` is resized and used as the second buffer. The result does not depend on the
/// thread count.
void radix_sort_bits(detail::RecycledVector<std::uint64_t>& keys, detail::RecycledVector<std::uint64_t>& scratch,
                     int low_bit, int bits);

}  // namespace embedkit::cpu
