#include "widen_rows.hpp"

#include "isa.hpp"

#if EMBEDKIT_HAVE_AVX2_CLONES
#include <cpuid.h>
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
  // F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports has no "f16c". AVX2's check
  // also says the OS saves the YMM registers the conversion writes.
  static const bool supported = [] {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    return supports(Isa::avx2) && __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  }();
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
