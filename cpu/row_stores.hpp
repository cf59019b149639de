#pragma once
// How the row gather writes its output: through the cache (plain stores), or streamed past it
// with non-temporal stores, which skip reading each output line from memory before writing it
// and leave the cache to the table rows. Streaming pays only for long rows into an output larger
// than the last-level cache; the measurements are in row_stores.cpp.

#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace embedkit::cpu {

/// The two ways of writing output rows.
enum class RowStores { cached, streaming };

/// Bytes of a cache line; streamed rows start and end on one.
constexpr std::int64_t kCacheLineBytes = 64;

/// The shortest row worth streaming, in bytes (192 floats).
constexpr std::int64_t kStreamingMinRowBytes = 768;

/// The last-level cache as the system reports it (sysconf), or 32 MiB where it reports none.
std::int64_t last_level_cache_bytes();

/// The stores for `count` rows of `dim` floats written from `out`: streaming when this CPU has
/// them, `out` starts on a cache line, rows are whole lines of at least kStreamingMinRowBytes,
/// and the output is larger than `cache_bytes`; cached otherwise.
RowStores choose_row_stores(const float* out, std::int64_t dim, std::int64_t count, std::int64_t cache_bytes);

/// Whether this build and CPU can stream rows at all.
constexpr bool streaming_stores_available() {
#if defined(__SSE2__)
  return true;
#else
  return false;
#endif
}

#if defined(__SSE2__)
/// Writes the `dim` floats of `row` to `out` with non-temporal stores, each line's four stores
/// back to back (interleaving them with the loads measured up to 1.5x slower). Needs `out` on a
/// cache line and dim a multiple of 16.
inline void stream_row(const float* row, std::int64_t dim, float* out) {
  for (std::int64_t c = 0; c < dim; c += 16) {
    const __m128 a = _mm_loadu_ps(row + c), b = _mm_loadu_ps(row + c + 4);
    const __m128 d = _mm_loadu_ps(row + c + 8), e = _mm_loadu_ps(row + c + 12);
    _mm_stream_ps(out + c, a);
    _mm_stream_ps(out + c + 4, b);
    _mm_stream_ps(out + c + 8, d);
    _mm_stream_ps(out + c + 12, e);
  }
}

/// Writes `dim` zeros to `out` with non-temporal stores; the same needs as stream_row.
inline void stream_zeros(std::int64_t dim, float* out) {
  const __m128 zero = _mm_setzero_ps();
  for (std::int64_t c = 0; c < dim; c += 4) _mm_stream_ps(out + c, zero);
}

/// Orders this thread's streamed stores before its later stores (and so before any barrier that
/// hands the output to another thread): non-temporal stores are weakly ordered.
inline void finish_streaming() { _mm_sfence(); }
#endif

}  // namespace embedkit::cpu
