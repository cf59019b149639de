#pragma once
// C++17, host and device. The value an initializer puts at (row, column): a pure function of
// (seed, row, column), so every thread count, device and shard builds the same matrix.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/philox.hpp>

#include <cmath>
#include <cstdint>

namespace embedkit::detail {

/// An initializer reduced to one base distribution with its two parameters.
struct InitSampler {
  enum Kind : int { uniform, normal, truncated_normal, constant };
  Kind kind = uniform;
  double a = 0.0;  // uniform: minval; normal, truncated_normal: mean; constant: value
  double b = 0.0;  // uniform: maxval; normal, truncated_normal: stddev
  // The table's row r is row row_first + r·row_stride of the matrix drawn: a shard of a sharded
  // table draws exactly its rows of the whole matrix. A whole table has 0 and 1.
  std::uint64_t row_first = 0;
  std::uint64_t row_stride = 1;
};

// Keras redraws a truncated normal at most this often in spirit "until it lands"; two draws per
// attempt miss with probability 0.0455² each, so 32 attempts never all miss in practice.
constexpr int kTruncatedNormalAttempts = 32;

/// The largest |z| of a normal draw: √(−2·ln u1) with u1 ≥ 2⁻⁵³ (unit_double's step) is at most
/// √(106·ln 2) = 8.5717..., rounded up.
constexpr double kLargestNormalDraw = 8.572;
/// A truncated normal keeps draws with |z| <= 2.
constexpr double kTruncatedNormalBound = 2.0;

/// 53 random bits as a double in [0, 1).
EK_HOST_DEVICE inline double unit_double(std::uint32_t high, std::uint32_t low) {
  return (static_cast<double>(high >> 5) * 67108864.0 + static_cast<double>(low >> 6)) * (1.0 / 9007199254740992.0);
}

/// The Philox block for one (row, column, attempt) of a table seeded with `seed`.
EK_HOST_DEVICE inline Philox4x32 init_block(std::uint64_t seed, std::uint64_t row, std::uint32_t col,
                                            std::uint32_t attempt) {
  return philox4x32_10(
      Philox4x32{{static_cast<std::uint32_t>(row), static_cast<std::uint32_t>(row >> 32), col, attempt}}, seed);
}

/// The matrix row a table's row `table_row` draws.
EK_HOST_DEVICE inline std::uint64_t matrix_row(const InitSampler& s, std::uint64_t table_row) {
  return s.row_first + table_row * s.row_stride;
}

/// The uniform draw at (matrix `row`, `col`): low + width·u. fma rounds once on every platform (an
/// instruction or libm's exact emulation), so host and device agree exactly. Branch-free, so a
/// loop over the columns vectorises.
EK_HOST_DEVICE inline float uniform_value(double low, double width, std::uint64_t seed, std::uint64_t row,
                                          std::uint32_t col) {
  const Philox4x32 r = init_block(seed, row, col, 0);
  return static_cast<float>(::fma(width, unit_double(r.v[0], r.v[1]), low));
}

/// The initial value of weights[row, col] (`row` of this table, mapped to the matrix's row).
EK_HOST_DEVICE inline float init_value(const InitSampler& s, std::uint64_t seed, std::uint64_t table_row,
                                       std::uint32_t col) {
  if (s.kind == InitSampler::constant) return static_cast<float>(s.a);
  const std::uint64_t row = matrix_row(s, table_row);
  if (s.kind == InitSampler::uniform) return uniform_value(s.a, s.b - s.a, seed, row, col);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (std::uint32_t attempt = 0; attempt < kTruncatedNormalAttempts; ++attempt) {
    const Philox4x32 r = init_block(seed, row, col, attempt);
    const double u1 = 1.0 - unit_double(r.v[0], r.v[1]);  // (0, 1]: log is finite
    const double u2 = unit_double(r.v[2], r.v[3]);
    const double radius = ::sqrt(-2.0 * ::log(u1));
    const double z0 = radius * ::cos(kTwoPi * u2);
    if (s.kind == InitSampler::normal) return static_cast<float>(::fma(s.b, z0, s.a));
    if (::fabs(z0) <= kTruncatedNormalBound) return static_cast<float>(::fma(s.b, z0, s.a));
    const double z1 = radius * ::sin(kTwoPi * u2);
    if (::fabs(z1) <= kTruncatedNormalBound) return static_cast<float>(::fma(s.b, z1, s.a));
  }
  return static_cast<float>(s.a);
}

}  // namespace embedkit::detail
