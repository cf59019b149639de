#include "fill.hpp"

#include "isa.hpp"
#include "parallel.hpp"

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
// uniform draw's Philox rounds vectorised across columns.
__attribute__((target("avx2,fma"))) void fill_rows_avx2_fma(float* weights, std::int64_t first, std::int64_t last,
                                                            std::int64_t dim, const detail::InitSampler& sampler,
                                                            std::uint64_t seed) {
  fill_rows(weights, first, last, dim, sampler, seed);
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
