#pragma once
// C++17, host and device. Rows stored in float16 or bfloat16: the conversions from and to float32
// (to nearest even, and stochastic with counter-based random bits keyed by seed, step, row and
// column), and the per-element accessors every loop and kernel reads and writes rows through, so
// an operation is written once over the element type T (float, float16, bfloat16) and
// instantiated per type (as FBGEMM's WeightRow). The math stays float32: widen on load, round on
// store.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/philox.hpp>
#include <embedkit/dtype.hpp>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace embedkit::detail {

/// An IEEE binary16 value as its bits.
struct float16 {
  std::uint16_t bits;
};
/// A bfloat16 value as its bits: the high half of a float32.
struct bfloat16 {
  std::uint16_t bits;
};

/// The DType of element type T.
template <class T>
constexpr DType dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>,
                "rows are float, float16 or bfloat16");
  if constexpr (std::is_same_v<T, float16>) return DType::float16;
  if constexpr (std::is_same_v<T, bfloat16>) return DType::bfloat16;
  return DType::float32;
}

/// Calls body(T{}) with T the element type of `type`.
template <class Body>
inline decltype(auto) with_dtype(DType type, Body&& body) {
  switch (type) {
    case DType::float16: return body(float16{});
    case DType::bfloat16: return body(bfloat16{});
    case DType::float32: break;
  }
  return body(0.0f);
}

EK_HOST_DEVICE inline std::uint32_t float_bits(float value) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(value);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}

EK_HOST_DEVICE inline float bits_float(std::uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// ---- widening: exact for every value (a float16 NaN becomes a quiet NaN) ----

EK_HOST_DEVICE inline float widen(float value) { return value; }
EK_HOST_DEVICE inline float widen(bfloat16 value) { return bits_float(static_cast<std::uint32_t>(value.bits) << 16); }
// The three cases computed and one selected, without branches, so a loop over a row vectorises.
// No float32 denormal is ever an operand: the subnormal case converts an integer and scales it, so
// flushing denormals (DAZ) cannot change a result.
EK_HOST_DEVICE inline float widen(float16 value) {
  const std::uint32_t sign = static_cast<std::uint32_t>(value.bits & 0x8000u) << 16;
  const std::uint32_t magnitude = value.bits & 0x7FFFu;
  // Infinity, or NaN made quiet with its payload kept, as F16C's vcvtph2ps does.
  const std::uint32_t quiet = magnitude > 0x7C00u ? 0x00400000u : 0u;
  const std::uint32_t special = 0x7F800000u | quiet | ((magnitude & 0x3FFu) << 13);
  const std::uint32_t normal = (magnitude + ((127u - 15u) << 10)) << 13;  // rebiased
  // Zero or subnormal: magnitude · 2^-24, both factors and the product exact in float32.
  const std::uint32_t subnormal =
      float_bits(static_cast<float>(static_cast<std::int32_t>(magnitude)) * 5.9604644775390625e-8f);
  const std::uint32_t bits = magnitude >= 0x7C00u ? special : magnitude >= 0x0400u ? normal : subnormal;
  return bits_float(sign | bits);
}

// ---- narrowing to nearest, ties to even ----
// NaN stays NaN: quietened, with its sign and the top of its payload (what F16C's vcvtps2ph does).

EK_HOST_DEVICE inline bfloat16 to_bfloat16_nearest(float value) {
  const std::uint32_t bits = float_bits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return {static_cast<std::uint16_t>((bits >> 16) | 0x0040u)};
  return {static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16)};
}

EK_HOST_DEVICE inline float16 to_float16_nearest(float value) {
  const std::uint32_t bits = float_bits(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) {
    return {static_cast<std::uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu))};
  }
  if (magnitude >= 0x477FF000u) return {static_cast<std::uint16_t>(sign | 0x7C00u)};  // >= 65520: infinity
  if (magnitude >= 0x38800000u) {  // a normal float16: rebias the exponent, round at bit 13
    const std::uint32_t rounded = (magnitude - 0x38000000u + 0xFFFu + ((magnitude >> 13) & 1u)) >> 13;
    return {static_cast<std::uint16_t>(sign | rounded)};
  }
  const std::uint32_t exponent = magnitude >> 23;
  if (exponent < 102u) return {sign};  // below 2^-25, half the smallest subnormal: zero
  // A subnormal float16: the significand in units of 2^-24, rounded at `shift` (14 to 24).
  const std::uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126u - exponent;
  std::uint32_t units = significand >> shift;
  const std::uint32_t rest = significand & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  units += (rest > half || (rest == half && (units & 1u) != 0u)) ? 1u : 0u;
  return {static_cast<std::uint16_t>(sign | units)};
}

// ---- stochastic narrowing ----
// `random` (32 uniform bits) rounds away from zero with probability (dropped part) / (spacing):
// exactly for every bfloat16 and every normal float16 result, and to within 2^-32 for float16's
// subnormals. Infinity stays infinity; a finite value past the largest finite one may round to it.

EK_HOST_DEVICE inline bfloat16 to_bfloat16_stochastic(float value, std::uint32_t random) {
  const std::uint32_t bits = float_bits(value);
  if ((bits & 0x7FFFFFFFu) >= 0x7F800000u) return to_bfloat16_nearest(value);  // NaN, infinity
  const std::uint32_t up = random < ((bits & 0xFFFFu) << 16) ? 1u : 0u;
  return {static_cast<std::uint16_t>((bits >> 16) + up)};  // a carry moves into the exponent
}

EK_HOST_DEVICE inline float16 to_float16_stochastic(float value, std::uint32_t random) {
  const std::uint32_t bits = float_bits(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return to_float16_nearest(value);                      // NaN
  if (magnitude >= 0x47800000u) return {static_cast<std::uint16_t>(sign | 0x7C00u)};  // >= 2^16: infinity
  if (magnitude >= 0x38800000u) {  // a normal float16, or (by the carry) infinity from just above 65504
    const std::uint32_t up = random < ((magnitude & 0x1FFFu) << 19) ? 1u : 0u;
    return {static_cast<std::uint16_t>(sign | (((magnitude - 0x38000000u) >> 13) + up))};
  }
  // A subnormal float16: the significand in units of 2^-24 and the fraction of a unit dropped.
  const std::uint32_t exponent = magnitude >> 23;
  const std::uint32_t significand = exponent == 0u ? magnitude : (magnitude & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = exponent == 0u ? 125u : 126u - exponent;  // 14 and up
  const std::uint32_t units = shift < 24u ? significand >> shift : 0u;
  const std::uint64_t rest = significand & ((std::uint64_t{1} << (shift < 24u ? shift : 24u)) - 1u);
  const std::uint64_t fraction = shift <= 32u ? rest << (32u - shift) : (shift < 64u ? rest >> (shift - 32u) : 0u);
  const std::uint32_t up = random < fraction ? 1u : 0u;
  return {static_cast<std::uint16_t>(sign | (units + up))};
}

/// The random bits stochastic rounding gives columns 4·quad to 4·quad + 3 of row `row` at step
/// `step` of a table seeded with `seed`: one Philox block, under a key apart from the initializers'.
EK_HOST_DEVICE inline Philox4x32 rounding_block(std::uint64_t seed, std::uint64_t step, std::uint64_t row,
                                                std::uint32_t quad) {
  constexpr std::uint64_t kRoundingStream = 0x5851F42D4C957F2Dull;
  const std::uint64_t key = (seed ^ kRoundingStream) + (step >> 32) * 0x9E3779B97F4A7C15ull;
  return philox4x32_10(Philox4x32{{static_cast<std::uint32_t>(row), static_cast<std::uint32_t>(row >> 32), quad,
                                   static_cast<std::uint32_t>(step)}},
                       key);
}

/// The bits of column `col` alone: word col mod 4 of its block.
EK_HOST_DEVICE inline std::uint32_t rounding_bits(std::uint64_t seed, std::uint64_t step, std::uint64_t row,
                                                  std::uint32_t col) {
  return rounding_block(seed, step, row, col >> 2).v[col & 3u];
}

/// How a step rounds the rows it writes back: the table's rounding and the key of its bits.
struct RowRounding {
  Rounding rounding = Rounding::stochastic;
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  // The table's row r is row row_first + r·row_stride of the matrix the bits are keyed by: a shard
  // of a sharded table rounds its rows as the whole table would. A whole table has 0 and 1.
  std::uint64_t row_first = 0;
  std::uint64_t row_stride = 1;
};

/// `value` as a T to nearest even (what set_weights, pretrained vectors and initializers store).
template <class T>
EK_HOST_DEVICE inline T narrow_nearest(float value) {
  if constexpr (std::is_same_v<T, bfloat16>) {
    return to_bfloat16_nearest(value);
  } else if constexpr (std::is_same_v<T, float16>) {
    return to_float16_nearest(value);
  } else {
    return value;
  }
}

/// `value` as a T, rounded stochastically with `random`.
template <class T>
EK_HOST_DEVICE inline T narrow_stochastic(float value, std::uint32_t random) {
  if constexpr (std::is_same_v<T, bfloat16>) {
    return to_bfloat16_stochastic(value, random);
  } else if constexpr (std::is_same_v<T, float16>) {
    return to_float16_stochastic(value, random);
  } else {
    return value;
  }
}

/// `value`, the float32 result of a step for (row, col), as a T under `rounding`.
template <class T>
EK_HOST_DEVICE inline T narrow_updated(float value, const RowRounding& rounding, std::uint64_t row, std::uint32_t col) {
  if (rounding.rounding == Rounding::nearest) return narrow_nearest<T>(value);
  const std::uint64_t key_row = rounding.row_first + row * rounding.row_stride;
  return narrow_stochastic<T>(value, rounding_bits(rounding.seed, rounding.step, key_row, col));
}

/// Row `row`'s `dim` updated float32 values `wide` written as T into `out` under `rounding`: what
/// narrow_updated gives each column, with one Philox block per four columns.
template <class T>
EK_HOST_DEVICE inline void narrow_updated_row(const float* wide, std::int64_t dim, const RowRounding& rounding,
                                              std::uint64_t row, T* out) {
  if (rounding.rounding == Rounding::nearest) {
    for (std::int64_t c = 0; c < dim; ++c) out[c] = narrow_nearest<T>(wide[c]);
    return;
  }
  const std::uint64_t key_row = rounding.row_first + row * rounding.row_stride;
  for (std::int64_t quad = 0; quad * 4 < dim; ++quad) {
    const Philox4x32 block = rounding_block(rounding.seed, rounding.step, key_row, static_cast<std::uint32_t>(quad));
    const std::int64_t first = quad * 4, end = first + 4 < dim ? first + 4 : dim;
    for (std::int64_t c = first; c < end; ++c) out[c] = narrow_stochastic<T>(wide[c], block.v[c - first]);
  }
}

}  // namespace embedkit::detail
