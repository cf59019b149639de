#include "fill.hpp"

#include "isa.hpp"
#include "parallel.hpp"
#include "philox_avx2.hpp"

namespace embedkit::cpu {
namespace {

// Rows [first, last) of the matrix. init_value's fma is exactly rounded on every instruction set,
// so a clone built with FMA gives the bits of the baseline build's libm call.
inline void fill_rows(float* weights, std::int64_t first, std::int64_t last, std::int64_t dim,
                      const detail::InitSampler& sampler, std::uint64_t seed) {
  if (sampler.kind == detail::InitSampler::uniform) {
    // init_value's uniform case with its branches hoisted out of the column loop, which the
    // compiler then vectorises.
    const double low = sampler.a, width = sampler.b - sampler.a;
    for (std::int64_t r = first; r < last; ++r) {
      float* row = weights + r * dim;
      const std::uint64_t matrix_row = detail::matrix_row(sampler, static_cast<std::uint64_t>(r));
      for (std::int64_t c = 0; c < dim; ++c) {
        row[c] = detail::uniform_value(low, width, seed, matrix_row, static_cast<std::uint32_t>(c));
      }
    }
    return;
  }
  for (std::int64_t r = first; r < last; ++r) {
    float* row = weights + r * dim;
    for (std::int64_t c = 0; c < dim; ++c) {
      row[c] = detail::init_value(sampler, seed, static_cast<std::uint64_t>(r), static_cast<std::uint32_t>(c));
    }
  }
}

#if EMBEDKIT_HAVE_AVX2_CLONES
// The same with AVX2 and FMA: the fma an instruction instead of a libm call per value, and the
// uniform draw's Philox rounds run on four columns per vector (cpu/philox_avx2.hpp), sixteen in
// flight so the multiplies' latency hides behind one another.
__attribute__((target("avx2,fma"))) void fill_rows_avx2_fma(float* weights, std::int64_t first, std::int64_t last,
                                                            std::int64_t dim, const detail::InitSampler& sampler,
                                                            std::uint64_t seed) {
  if (sampler.kind != detail::InitSampler::uniform) {
    fill_rows(weights, first, last, dim, sampler, seed);
    return;
  }
  namespace px = philox_avx2;
  const double low = sampler.a, width = sampler.b - sampler.a;
  const __m256d low4 = _mm256_set1_pd(low), width4 = _mm256_set1_pd(width);
  const __m256i step = _mm256_set1_epi64x(4);
  for (std::int64_t r = first; r < last; ++r) {
    float* row = weights + r * dim;
    const std::uint64_t matrix_row = detail::matrix_row(sampler, static_cast<std::uint64_t>(r));
    const px::RowKey key = px::row_key(seed, matrix_row);
    __m256i cols = _mm256_setr_epi64x(0, 1, 2, 3);
    std::int64_t c = 0;
    for (; c + 16 <= dim; c += 16) {
      __m256i w0[4], w1[4];
      for (int j = 0; j < 4; ++j) {
        px::draw(key, cols, w0[j], w1[j]);
        cols = _mm256_add_epi64(cols, step);
      }
      for (int j = 0; j < 4; ++j) _mm_storeu_ps(row + c + 4 * j, px::uniform(w0[j], w1[j], width4, low4));
    }
    for (; c + 4 <= dim; c += 4) {
      __m256i w0, w1;
      px::draw(key, cols, w0, w1);
      cols = _mm256_add_epi64(cols, step);
      _mm_storeu_ps(row + c, px::uniform(w0, w1, width4, low4));
    }
    for (; c < dim; ++c) row[c] = detail::uniform_value(low, width, seed, matrix_row, static_cast<std::uint32_t>(c));
  }
}

bool has_avx2_fma() {
  static const bool supported = supports(Isa::avx2) && __builtin_cpu_supports("fma");
  return supported;
}
#endif

}  // namespace

void fill_initial(float* weights, std::int64_t rows, std::int64_t dim, const detail::InitSampler& sampler,
                  std::uint64_t seed) {
#if EMBEDKIT_HAVE_AVX2_CLONES
  const bool avx2_fma = has_avx2_fma();
#else
  const bool avx2_fma = false;
#endif
#pragma omp parallel for schedule(static) if (rows * dim >= kParallelMinFloats)
  for (std::int64_t r = 0; r < rows; ++r) {
#if EMBEDKIT_HAVE_AVX2_CLONES
    if (avx2_fma) {
      fill_rows_avx2_fma(weights, r, r + 1, dim, sampler, seed);
      continue;
    }
#endif
    fill_rows(weights, r, r + 1, dim, sampler, seed);
  }
}

}  // namespace embedkit::cpu
