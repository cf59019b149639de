#pragma once
// Non-temporal row stores for the streamed gather (cpu/row_stores.hpp decides when). Builds
// without SSE2 get plain stores of the same values; can_stream_rows keeps them from being chosen.

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace embedkit::cpu {

/// Writes the `dim` floats of `row` to `out` with non-temporal stores, each line's four stores
/// back to back (interleaved with the loads they measured 1.4-1.6x slower, row_stores.cpp).
/// Needs what can_stream_rows checks: `out` on a cache line, dim a multiple of 16.
inline void stream_row(const float* row, std::int64_t dim, float* out) {
#if defined(__SSE2__)
  for (std::int64_t c = 0; c < dim; c += 16) {
    const __m128 a = _mm_loadu_ps(row + c), b = _mm_loadu_ps(row + c + 4);
    const __m128 d = _mm_loadu_ps(row + c + 8), e = _mm_loadu_ps(row + c + 12);
    _mm_stream_ps(out + c, a);
    _mm_stream_ps(out + c + 4, b);
    _mm_stream_ps(out + c + 8, d);
    _mm_stream_ps(out + c + 12, e);
  }
#else
  std::memcpy(out, row, static_cast<std::size_t>(dim) * sizeof(float));
#endif
}

/// Writes `dim` zeros to `out` with non-temporal stores; the same needs as stream_row.
inline void stream_zeros(std::int64_t dim, float* out) {
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps();
  for (std::int64_t c = 0; c < dim; c += 4) _mm_stream_ps(out + c, zero);
#else
  std::memset(out, 0, static_cast<std::size_t>(dim) * sizeof(float));
#endif
}

/// Orders this thread's streamed stores before its later stores (and so before the barrier that
/// hands the output to another thread): non-temporal stores are weakly ordered.
inline void finish_streaming() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

}  // namespace embedkit::cpu
