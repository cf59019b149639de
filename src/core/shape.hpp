#pragma once
// Shape arithmetic and its wording, shared by the C++ and C entry points.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace embedkit::detail {

/// Largest rank accepted anywhere; deeper tensors are almost certainly garbage pointers.
constexpr int kMaxRank = 32;

/// Product of `shape`, 1 for rank 0. Throws invalid_argument naming `what` for a negative
/// dimension or a product that overflows int64 (or `bytes_per_element` times it, size_t).
std::int64_t checked_numel(std::span<const std::int64_t> shape, std::string_view what,
                           std::size_t bytes_per_element = 1);

/// Python's tuple spelling, as Keras and NumPy print shapes: "()", "(5,)", "(2, 3)".
std::string format_shape(std::span<const std::int64_t> shape);

/// The subscript of flat position `flat` in a row-major `shape`, as TensorFlow prints it:
/// "" for rank 0, "[7]" for rank 1, "[3,7]" for rank 2.
std::string format_position(std::span<const std::int64_t> shape, std::int64_t flat);

}  // namespace embedkit::detail
