#include "widen_rows.hpp"

#include "isa.hpp"

#if EMBEDKIT_HAVE_AVX2_CLONES
#include <immintrin.h>
#endif

namespace embedkit::cpu {
namespace {

#if EMBEDKIT_HAVE_AVX2_CLONES
__attribute__((target("avx,f16c"))) void widen_f16c(const detail::float16* from, std::int64_t dim, float* to) {
  std::int64_t c = 0;
  for (; c + 8 <= dim; c += 8) {
    const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + c));
    _mm256_storeu_ps(to + c, _mm256_cvtph_ps(halves));
  }
  for (; c < dim; ++c) to[c] = detail::widen(from[c]);
}
#endif

}  // namespace

bool has_f16c() {
#if EMBEDKIT_HAVE_AVX2_CLONES
  static const bool supported = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return supported;
#else
  return false;
#endif
}

void widen_float16_row(const detail::float16* from, std::int64_t dim, float* to, bool f16c) {
#if EMBEDKIT_HAVE_AVX2_CLONES
  if (f16c) {
    widen_f16c(from, dim, to);
    return;
  }
#else
  (void)f16c;
#endif
  for (std::int64_t c = 0; c < dim; ++c) to[c] = detail::widen(from[c]);
}

}  // namespace embedkit::cpu
