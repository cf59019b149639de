#include "fill.hpp"

#include "isa.hpp"
#include "parallel.hpp"
#include "philox_avx2.hpp"

#include <vector>

namespace embedkit::cpu {
namespace {

// Rows [first, last) of the matrix, written from `weights` on (row first at weights). init_value's fma is exactly
// rounded on every instruction set, so a clone built with FMA gives the bits of the baseline build's libm call.
inline void fill_rows(float* weights, std::int64_t first, std::int64_t last, std::int64_t dim,
                      const detail::InitSampler& sampler, std::uint64_t seed) {
  if (sampler.kind == detail::InitSampler::uniform) {
    // init_value's uniform case with its branches hoisted out of the column loop, which the
    // compiler then vectorises.
    const double low = sampler.a, width = sampler.b - sampler.a;
    for (std::int64_t r = first; r < last; ++r) {
      float* row = weights + (r - first) * dim;
      const std::uint64_t matrix_row = detail::matrix_row(sampler, static_cast<std::uint64_t>(r));
      for (std::int64_t c = 0; c < dim; ++c) {
        row[c] = detail::uniform_value(low, width, seed, matrix_row, static_cast<std::uint32_t>(c));
      }
    }
    return;
  }
  for (std::int64_t r = first; r < last; ++r) {
    float* row = weights + (r - first) * dim;
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
    float* row = weights + (r - first) * dim;
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

// Row r of the matrix into `row`, by the clone this CPU runs.
inline void fill_row(float* row, std::int64_t r, std::int64_t dim, const detail::InitSampler& sampler,
                     std::uint64_t seed, bool avx2_fma) {
#if EMBEDKIT_HAVE_AVX2_CLONES
  if (avx2_fma) {
    fill_rows_avx2_fma(row, r, r + 1, dim, sampler, seed);
    return;
  }
#else
  (void)avx2_fma;
#endif
  fill_rows(row, r, r + 1, dim, sampler, seed);
}

bool use_avx2_fma() {
#if EMBEDKIT_HAVE_AVX2_CLONES
  return has_avx2_fma();
#else
  return false;
#endif
}

}  // namespace

void fill_initial(float* weights, std::int64_t rows, std::int64_t dim, const detail::InitSampler& sampler,
                  std::uint64_t seed) {
  const bool avx2_fma = use_avx2_fma();
#pragma omp parallel for schedule(static) if (rows * dim >= kParallelMinFloats)
  for (std::int64_t r = 0; r < rows; ++r) fill_row(weights + r * dim, r, dim, sampler, seed, avx2_fma);
}

template <class T>
void fill_initial(T* weights, std::int64_t rows, std::int64_t dim, const detail::InitSampler& sampler,
                  std::uint64_t seed) {
  const bool avx2_fma = use_avx2_fma();
#pragma omp parallel if (rows * dim >= kParallelMinFloats)
  {
    std::vector<float> wide(static_cast<std::size_t>(dim));
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      fill_row(wide.data(), r, dim, sampler, seed, avx2_fma);
      T* row = weights + r * dim;
      for (std::int64_t c = 0; c < dim; ++c) row[c] = detail::narrow_nearest<T>(wide[c]);
    }
  }
}

template void fill_initial(detail::float16*, std::int64_t, std::int64_t, const detail::InitSampler&, std::uint64_t);
template void fill_initial(detail::bfloat16*, std::int64_t, std::int64_t, const detail::InitSampler&, std::uint64_t);

}  // namespace embedkit::cpu
