#pragma once
/// @file dtype.hpp
/// @brief The element type a table stores its rows in, and how a train step rounds into it.
// C++17 (included by the shared host/device headers).

#include <embedkit/export.h>

#include <cstddef>

namespace embedkit {

/// @brief A table's storage type. The math (lookups' sums, gradients, optimizer state) is float32
/// whatever it is; float16 and bfloat16 halve the rows' bytes and are rounded into on every write.
enum class DType {
  float32,   ///< IEEE binary32 (the default)
  float16,   ///< IEEE binary16: 10 mantissa bits, largest finite 65504
  bfloat16,  ///< bfloat16: float32's exponent range, 7 mantissa bits
};

/// @brief How a train step rounds an updated row into a float16 or bfloat16 table.
enum class Rounding {
  /// Up or down with probability proportional to the distance (the default): a step smaller than
  /// half the spacing of the stored values still moves a row by the right amount on average. The
  /// random bits are a pure function of (seed, step, row, column): the same on any thread count.
  stochastic,
  nearest,  ///< to the nearest value, ties to even
};

/// @brief Bytes of one stored element of `type`.
constexpr std::size_t dtype_bytes(DType type) noexcept { return type == DType::float32 ? 4 : 2; }

/// @brief The JSON (and NumPy) spelling of a type: "float32", "float16" or "bfloat16".
EMBEDKIT_API const char* to_string(DType type) noexcept;
/// @brief The JSON spelling of a rounding: "stochastic" or "nearest".
EMBEDKIT_API const char* to_string(Rounding rounding) noexcept;

}  // namespace embedkit
