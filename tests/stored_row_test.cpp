// The float16 and bfloat16 conversions of include/embedkit/detail/stored_row.hpp, bit for bit
// against plain references written here (decoding by ldexp, rounding by comparing distances in
// double), over every 16-bit pattern and adversarial float32 inputs; stochastic rounding against
// its definition, unbiased and a pure function of its key.
#include <embedkit/detail/stored_row.hpp>

#include <gtest/gtest.h>

#include "cpu/widen_rows.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace {

using embedkit::detail::bfloat16;
using embedkit::detail::float16;

float from_bits(std::uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}
std::uint32_t to_bits(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return bits;
}

// ---- references ----

// An IEEE binary16 pattern's value, from the format's definition.
double half_value(std::uint16_t h) {
  const int sign = (h >> 15) != 0 ? -1 : 1;
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  if (exponent == 0x1F) return mantissa != 0 ? std::nan("") : sign * std::numeric_limits<double>::infinity();
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

// A bfloat16 pattern's value.
double bfloat_value(std::uint16_t b) {
  const int sign = (b >> 15) != 0 ? -1 : 1;
  const int exponent = (b >> 7) & 0xFF;
  const int mantissa = b & 0x7F;
  if (exponent == 0xFF) return mantissa != 0 ? std::nan("") : sign * std::numeric_limits<double>::infinity();
  if (exponent == 0) return sign * std::ldexp(mantissa, -133);
  return sign * std::ldexp(128 + mantissa, exponent - 134);
}

// The non-negative finite values of a 16-bit format in increasing order, as (value, pattern).
struct Grid {
  std::vector<double> values;
  std::vector<std::uint16_t> patterns;
  double overflow;  // where rounding to nearest gives infinity: the largest + half a spacing
};

Grid grid_of(double (*value_of)(std::uint16_t)) {
  Grid grid;
  for (std::uint32_t p = 0; p < 0x8000; ++p) {
    const double v = value_of(static_cast<std::uint16_t>(p));
    if (!std::isfinite(v)) continue;
    grid.values.push_back(v);
    grid.patterns.push_back(static_cast<std::uint16_t>(p));
  }
  const double largest = grid.values.back(), below = grid.values[grid.values.size() - 2];
  grid.overflow = largest + (largest - below) / 2;
  return grid;
}

const Grid& half_grid() {
  static const Grid grid = grid_of(half_value);
  return grid;
}
const Grid& bfloat_grid() {
  static const Grid grid = grid_of(bfloat_value);
  return grid;
}

// Round to nearest, ties to the even pattern, for a finite non-NaN x.
std::uint16_t nearest_reference(const Grid& grid, float x) {
  const auto sign = static_cast<std::uint16_t>(std::signbit(x) ? 0x8000 : 0);
  const double a = std::fabs(static_cast<double>(x));
  const std::uint16_t inf = grid.patterns.back() + 1;  // the pattern after the largest finite one
  if (std::isinf(x) || a >= grid.overflow) return sign | inf;
  const auto hi =
      static_cast<std::size_t>(std::lower_bound(grid.values.begin(), grid.values.end(), a) - grid.values.begin());
  if (hi == grid.values.size()) return sign | grid.patterns.back();  // past the largest, below overflow
  if (grid.values[hi] == a) return sign | grid.patterns[hi];
  const std::size_t lo = hi - 1;
  const double down = a - grid.values[lo], up = grid.values[hi] - a;
  std::size_t pick = down < up ? lo : hi;
  if (down == up) pick = (grid.patterns[lo] & 1) == 0 ? lo : hi;
  return sign | grid.patterns[pick];
}

// Stochastic rounding by its definition: away from zero iff random < floor(2^32 · (|x| - lo) / (hi - lo)),
// lo and hi the neighbours of |x| (hi past the largest finite value is infinity, one spacing on).
std::uint16_t stochastic_reference(const Grid& grid, float x, std::uint32_t random) {
  const auto sign = static_cast<std::uint16_t>(std::signbit(x) ? 0x8000 : 0);
  const double a = std::fabs(static_cast<double>(x));
  const std::uint16_t inf = grid.patterns.back() + 1;
  const double largest = grid.values.back(), spacing = largest - grid.values[grid.values.size() - 2];
  if (std::isinf(x) || a >= largest + spacing) return sign | inf;
  const auto hi =
      static_cast<std::size_t>(std::lower_bound(grid.values.begin(), grid.values.end(), a) - grid.values.begin());
  if (hi < grid.values.size() && grid.values[hi] == a) return sign | grid.patterns[hi];
  const std::size_t lo = hi - 1;
  const double hi_value = hi < grid.values.size() ? grid.values[hi] : largest + spacing;
  const std::uint16_t hi_pattern = hi < grid.patterns.size() ? grid.patterns[hi] : inf;
  // The fraction is a ratio of small multiples of powers of two: long double holds it exactly.
  const long double fraction = (static_cast<long double>(a) - grid.values[lo]) / (hi_value - grid.values[lo]);
  const long double threshold = std::floor(std::ldexp(fraction, 32));
  return sign | (static_cast<long double>(random) < threshold ? hi_pattern : grid.patterns[lo]);
}

// ---- inputs ----

// Floats that probe every rounding case: each 16-bit value, its neighbours in float32, the
// midpoints and their neighbours, signed zeros, denormals, the overflow edges, and random bits.
std::vector<float> probe_floats(const Grid& grid) {
  std::vector<float> floats;
  const auto around = [&](float v) {
    floats.push_back(v);
    floats.push_back(std::nextafter(v, std::numeric_limits<float>::infinity()));
    floats.push_back(std::nextafter(v, -std::numeric_limits<float>::infinity()));
  };
  for (std::size_t k = 0; k < grid.values.size(); ++k) {
    around(static_cast<float>(grid.values[k]));
    if (k + 1 < grid.values.size()) around(static_cast<float>((grid.values[k] + grid.values[k + 1]) / 2));
  }
  around(static_cast<float>(grid.overflow));
  for (const float v : {0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                        std::numeric_limits<float>::max(), std::numeric_limits<float>::infinity(), 1e-30f, 3e38f}) {
    around(v);
  }
  std::mt19937 rng(7);
  for (int k = 0; k < 200000; ++k) floats.push_back(from_bits(static_cast<std::uint32_t>(rng()) & 0x7F7FFFFFu));
  const std::size_t positive = floats.size();
  for (std::size_t k = 0; k < positive; ++k) floats.push_back(-floats[k]);
  return floats;
}

TEST(StoredRow, WidenEveryPattern) {
  for (std::uint32_t p = 0; p < 0x10000; ++p) {
    const auto bits = static_cast<std::uint16_t>(p);
    const float half = embedkit::detail::widen(float16{bits});
    const float bfloat = embedkit::detail::widen(bfloat16{bits});
    const double expected_half = half_value(bits), expected_bfloat = bfloat_value(bits);
    if (std::isnan(expected_half)) {
      EXPECT_TRUE(std::isnan(half)) << std::hex << p;
      EXPECT_EQ(to_bits(half) >> 31, p >> 15) << "NaN sign, pattern " << std::hex << p;
    } else {
      EXPECT_EQ(static_cast<double>(half), expected_half) << std::hex << p;
      EXPECT_EQ(std::signbit(half), std::signbit(expected_half)) << std::hex << p;
    }
    if (std::isnan(expected_bfloat)) {
      EXPECT_TRUE(std::isnan(bfloat)) << std::hex << p;
    } else {
      EXPECT_EQ(static_cast<double>(bfloat), expected_bfloat) << std::hex << p;
    }
  }
}

// The run-time choice for lookups of float16 rows: F16C's conversion gives the scalar one's bits for
// every pattern (NaNs included), at every alignment and tail length.
TEST(StoredRow, F16cWideningIsTheScalarOne) {
  if (!embedkit::cpu::has_f16c()) GTEST_SKIP() << "this CPU has no F16C";
  std::vector<float16> patterns(0x10000 + 7);
  for (std::size_t p = 0; p < patterns.size(); ++p) patterns[p] = float16{static_cast<std::uint16_t>(p)};
  for (const std::size_t offset : {std::size_t{0}, std::size_t{3}}) {
    const std::int64_t count = 0x10000 + 4 - static_cast<std::int64_t>(offset);
    std::vector<float> scalar(static_cast<std::size_t>(count)), vector(static_cast<std::size_t>(count));
    embedkit::cpu::widen_float16_row(patterns.data() + offset, count, scalar.data(), false);
    embedkit::cpu::widen_float16_row(patterns.data() + offset, count, vector.data(), true);
    for (std::size_t k = 0; k < scalar.size(); ++k) {
      ASSERT_EQ(to_bits(vector[k]), to_bits(scalar[k])) << "pattern " << std::hex << (k + offset) % 0x10000;
    }
  }
}

TEST(StoredRow, NearestEvenBitForBit) {
  for (const bool half : {true, false}) {
    const Grid& grid = half ? half_grid() : bfloat_grid();
    for (const float x : probe_floats(grid)) {
      const std::uint16_t got =
          half ? embedkit::detail::to_float16_nearest(x).bits : embedkit::detail::to_bfloat16_nearest(x).bits;
      ASSERT_EQ(got, nearest_reference(grid, x))
          << (half ? "float16 " : "bfloat16 ") << x << " bits " << std::hex << to_bits(x);
    }
  }
}

TEST(StoredRow, NanStaysQuietNanWithItsSign) {
  for (const std::uint32_t bits : {0x7FC00000u, 0x7F800001u, 0xFFBFFFFFu, 0x7FFFFFFFu, 0xFF800001u}) {
    const float nan = from_bits(bits);
    const float16 h = embedkit::detail::to_float16_nearest(nan);
    const bfloat16 b = embedkit::detail::to_bfloat16_nearest(nan);
    EXPECT_EQ(h.bits & 0x7E00u, 0x7E00u) << std::hex << bits;  // exponent all ones, quiet bit set
    EXPECT_EQ(h.bits >> 15, bits >> 31);
    EXPECT_EQ(b.bits & 0x7FC0u, 0x7FC0u) << std::hex << bits;
    EXPECT_EQ(b.bits >> 15, bits >> 31);
    EXPECT_TRUE(std::isnan(embedkit::detail::widen(embedkit::detail::to_float16_stochastic(nan, 0))));
    EXPECT_TRUE(std::isnan(embedkit::detail::widen(embedkit::detail::to_bfloat16_stochastic(nan, ~0u))));
  }
}

TEST(StoredRow, StochasticBitForBit) {
  std::mt19937 rng(11);
  for (const bool half : {true, false}) {
    const Grid& grid = half ? half_grid() : bfloat_grid();
    for (const float x : probe_floats(grid)) {
      // Random bits, and the thresholds' edges: 0, all ones, and a draw at the boundary itself.
      for (const std::uint32_t random : {static_cast<std::uint32_t>(rng()), 0u, ~0u, 0x80000000u, 0x7FFFFFFFu}) {
        const std::uint16_t got = half ? embedkit::detail::to_float16_stochastic(x, random).bits
                                       : embedkit::detail::to_bfloat16_stochastic(x, random).bits;
        ASSERT_EQ(got, stochastic_reference(grid, x, random))
            << (half ? "float16 " : "bfloat16 ") << x << " bits " << std::hex << to_bits(x) << " random " << random;
      }
    }
  }
}

// The mean of many stochastic roundings of one value is the value: each rounding is a Bernoulli
// choice between its neighbours, so over n draws the mean's standard deviation is at most
// spacing / (2·√n); 6 of them is the tolerance.
TEST(StoredRow, StochasticRoundingIsUnbiased) {
  constexpr int kDraws = 200000;
  for (const float x : {1.0f - 1e-3f, 0.3333333f, -7.123456f, 1e-6f, 3.0e-5f, 65000.0f, -2.5e-7f}) {
    for (const bool half : {true, false}) {
      double sum = 0.0;
      for (int k = 0; k < kDraws; ++k) {
        const std::uint32_t random = embedkit::detail::rounding_bits(99, static_cast<std::uint64_t>(k), 3, 5);
        sum += half ? embedkit::detail::widen(embedkit::detail::to_float16_stochastic(x, random))
                    : embedkit::detail::widen(embedkit::detail::to_bfloat16_stochastic(x, random));
      }
      const float down = half ? embedkit::detail::widen(embedkit::detail::to_float16_stochastic(x, 0xFFFFFFFFu))
                              : embedkit::detail::widen(embedkit::detail::to_bfloat16_stochastic(x, 0xFFFFFFFFu));
      const float up = half ? embedkit::detail::widen(embedkit::detail::to_float16_stochastic(x, 0u))
                            : embedkit::detail::widen(embedkit::detail::to_bfloat16_stochastic(x, 0u));
      const double spacing = std::fabs(static_cast<double>(up) - down);
      const double tolerance = 6.0 * spacing / (2.0 * std::sqrt(static_cast<double>(kDraws)));
      EXPECT_NEAR(sum / kDraws, static_cast<double>(x), tolerance) << (half ? "float16 " : "bfloat16 ") << x;
    }
  }
}

// The bits are a pure function of (seed, step, row, column), different when any of them changes,
// and about uniform.
TEST(StoredRow, RoundingBitsAreKeyed) {
  using embedkit::detail::rounding_bits;
  EXPECT_EQ(rounding_bits(1, 2, 3, 4), rounding_bits(1, 2, 3, 4));
  EXPECT_NE(rounding_bits(1, 2, 3, 4), rounding_bits(2, 2, 3, 4));
  EXPECT_NE(rounding_bits(1, 2, 3, 4), rounding_bits(1, 3, 3, 4));
  EXPECT_NE(rounding_bits(1, 2, 3, 4), rounding_bits(1, 2, 4, 4));
  EXPECT_NE(rounding_bits(1, 2, 3, 4), rounding_bits(1, 2, 3, 5));
  EXPECT_NE(rounding_bits(1, 2, 3, 4), rounding_bits(1, 2 + (std::uint64_t{1} << 32), 3, 4));
  double mean = 0.0;
  constexpr int kCount = 100000;
  for (int k = 0; k < kCount; ++k) mean += rounding_bits(5, 1, static_cast<std::uint64_t>(k / 64), k % 64);
  mean /= kCount * 4294967296.0;
  EXPECT_NEAR(mean, 0.5, 0.005);
}

}  // namespace
