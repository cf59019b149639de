#pragma once
// The uniform initializer's draw (detail::uniform_value) for four columns of one row at once, with
// AVX2 and FMA: the same Philox4x32-10 rounds and the same double arithmetic, so the same bits.
// Only for the AVX2+FMA clone of cpu/fill.cpp, which runs where the CPU has both.

#include <embedkit/detail/philox.hpp>

#include "isa.hpp"

#include <cstdint>

#if EMBEDKIT_HAVE_AVX2_CLONES
#include <immintrin.h>

#define EMBEDKIT_TARGET_AVX2_FMA __attribute__((target("avx2,fma"), always_inline))

namespace embedkit::cpu::philox_avx2 {

using detail::kPhiloxMul0;
using detail::kPhiloxMul1;
using detail::kPhiloxRounds;
using detail::kPhiloxWeyl0;
using detail::kPhiloxWeyl1;

// Each 64-bit lane holds one column's 32-bit word in its low half. vpmuludq multiplies exactly those
// halves into full 64-bit products, so a product's halves are Philox's hi and lo with one shift and
// no shuffles. The high halves of the words carry garbage from the xors; nothing reads them.

/// The parts of a row's rounds that do not depend on the column, computed once per row. Round 0
/// multiplies the counter's word 0 (the row's low half) and round 1 the word 2 that round 0 made
/// from it, so those two products are the row's alone.
struct RowKey {
  __m256i round0_xor;   // row_hi ^ k0, into word 0 after round 0
  __m256i round1_xor0;  // hi(M1·w2) ^ k0', into word 0 after round 1
  __m256i round1_w1;    // lo(M1·w2): word 1 after round 1
  __m256i round1_xor2;  // lo(M0·row_lo) ^ k1', into word 2 after round 1
  std::uint32_t k0[kPhiloxRounds], k1[kPhiloxRounds];
};

EMBEDKIT_TARGET_AVX2_FMA inline RowKey row_key(std::uint64_t seed, std::uint64_t row) {
  RowKey key{};
  std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < kPhiloxRounds; ++round) {
    key.k0[round] = k0;
    key.k1[round] = k1;
    k0 += kPhiloxWeyl0;
    k1 += kPhiloxWeyl1;
  }
  // Round 0 on the counter (row_lo, row_hi, col, 0): words 2 and 3 come from the row alone.
  std::uint32_t hi0, lo0;
  detail::philox_mulhilo(kPhiloxMul0, static_cast<std::uint32_t>(row), hi0, lo0);
  const std::uint32_t w2 = hi0 ^ 0u ^ key.k1[0];
  // Round 1 multiplies that word 2: its product is the row's too.
  std::uint32_t hi1, lo1;
  detail::philox_mulhilo(kPhiloxMul1, w2, hi1, lo1);
  key.round0_xor = _mm256_set1_epi64x(static_cast<std::uint32_t>(row >> 32) ^ key.k0[0]);
  key.round1_xor0 = _mm256_set1_epi64x(hi1 ^ key.k0[1]);
  key.round1_w1 = _mm256_set1_epi64x(lo1);
  key.round1_xor2 = _mm256_set1_epi64x(lo0 ^ key.k1[1]);
  return key;
}

/// Words 0 and 1 of philox4x32_10((row_lo, row_hi, col, 0), seed) for the four columns in `cols`.
EMBEDKIT_TARGET_AVX2_FMA inline void draw(const RowKey& key, __m256i cols, __m256i& out0, __m256i& out1) {
  const __m256i mul0 = _mm256_set1_epi64x(kPhiloxMul0), mul1 = _mm256_set1_epi64x(kPhiloxMul1);
  // Round 0: only word 2 (the column) varies.
  __m256i p1 = _mm256_mul_epu32(cols, mul1);
  __m256i w0 = _mm256_xor_si256(_mm256_srli_epi64(p1, 32), key.round0_xor);
  const __m256i w1_after0 = p1;
  // Round 1: word 0 varies, word 2 is the row's.
  __m256i p0 = _mm256_mul_epu32(w0, mul0);
  w0 = _mm256_xor_si256(w1_after0, key.round1_xor0);
  __m256i w1 = key.round1_w1;
  __m256i w2 = _mm256_xor_si256(_mm256_srli_epi64(p0, 32), key.round1_xor2);
  __m256i w3 = p0;
  for (int round = 2; round < kPhiloxRounds - 1; ++round) {
    p0 = _mm256_mul_epu32(w0, mul0);
    p1 = _mm256_mul_epu32(w2, mul1);
    const __m256i k0 = _mm256_set1_epi64x(key.k0[round]), k1 = _mm256_set1_epi64x(key.k1[round]);
    w0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), w1), k0);
    w1 = p1;
    w2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), w3), k1);
    w3 = p0;
  }
  // The last round: words 0 and 1 need only the product of word 2.
  p1 = _mm256_mul_epu32(w2, mul1);
  out0 =
      _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), w1), _mm256_set1_epi64x(key.k0[kPhiloxRounds - 1]));
  out1 = p1;
}

/// static_cast<float>(fma(width, unit_double(w0, w1), low)) per lane. unit_double's 53 bits as
/// (1 + h·2⁻²⁷ − (1 + 2⁻²⁷)) + (2⁻²⁷ + l·2⁻⁵³), h = w0 >> 5 and l = w1 >> 6 written into the
/// mantissas: the subtraction is exact (both in [1, 2)) and so is the sum (it is representable), so
/// u is unit_double's value exactly.
EMBEDKIT_TARGET_AVX2_FMA inline __m128 uniform(__m256i w0, __m256i w1, __m256d width, __m256d low) {
  const __m256i high_bits = _mm256_slli_epi64(_mm256_and_si256(w0, _mm256_set1_epi64x(0xFFFFFFE0)), 20);
  const __m256i low_bits = _mm256_slli_epi64(_mm256_and_si256(w1, _mm256_set1_epi64x(0xFFFFFFC0)), 20);
  const __m256d one_plus_high =
      _mm256_castsi256_pd(_mm256_or_si256(high_bits, _mm256_set1_epi64x(0x3FF0000000000000)));  // 1 + h·2⁻²⁷
  const __m256d tiny_plus_low = _mm256_castsi256_pd(
      _mm256_or_si256(low_bits, _mm256_set1_epi64x(static_cast<long long>(1023 - 27) << 52)));  // 2⁻²⁷ + l·2⁻⁵³
  const __m256d u = _mm256_add_pd(_mm256_sub_pd(one_plus_high, _mm256_set1_pd(1.0 + 0x1p-27)), tiny_plus_low);
  return _mm256_cvtpd_ps(_mm256_fmadd_pd(width, u, low));
}

}  // namespace embedkit::cpu::philox_avx2

#endif
