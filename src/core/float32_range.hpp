#pragma once
// The range every config value that reaches float32 arithmetic (optimizer scalars, initializer
// parameters, penalties, constraints) must lie in: one check, one message naming the key and the limit.

#include <embedkit/status.hpp>

#include "core/expects.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <string_view>

namespace embedkit::detail {

/// The largest magnitude a float32 holds, as the double the checks compare with.
constexpr double kFloat32Max = static_cast<double>(std::numeric_limits<float>::max());

/// @throws Error(invalid_argument) `WHAT must fit a float32, got V (|value| <= 3.4028234663852886e+38)`.
inline void require_float32(double value, std::string_view what) {
  EMBEDKIT_EXPECTS(std::abs(value) <= kFloat32Max, Status::invalid_argument,
                   "{} must fit a float32, got {} (|value| <= {})", what, value, kFloat32Max);
}

}  // namespace embedkit::detail
