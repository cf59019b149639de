#include "row_stores.hpp"

#include "prefetch.hpp"

#include <unistd.h>

#include <cstdint>
#include <initializer_list>

namespace embedkit::cpu {

// Measured on this project's machine (AMD EPYC, 2 vCPUs, AVX-512; the VM reports 320 MiB of L3
// to sysconf, 32 MiB to lscpu), 2^20 uniform ids into a 2 GiB table, plain and streamed stores
// alternating call by call in one process, best / median ms of 15-31 calls:
// - cpu::gather_rows itself: dim 256 100.8 / 117.6 plain against 72.9 / 80.8 streamed, and 93.7 /
//   96.4 against 67.3 / 69.9 (a copy of the same bytes: 49.6-50.8); dim 192 62.0 / 78.8 against
//   64.4 / 80.9, and 65.9 / 70.7 against 60.5 / 63.9; dim 128 58.3 / 66.1 against 53.3 / 63.0;
//   dim 64 22.1 / 28.5 against 30.4 / 36.5.
// - a standalone copy of the loop: dim 64 20.4 / 31.9 against 28.7 / 38.7; dim 128 37.7 / 43.4
//   against 45.6 / 48.9, then 47.9 / 56.9 against 45.2 / 51.0; dim 192 69.9 / 86.5 against 58.8 /
//   68.0; dim 256 105.0 / 115.2 against 69.4 / 76.2; dim 512 217 / 230 against 127 / 134. The same
//   16-byte streaming stores interleaved with the loads (as a plain loop compiles) took 94.8 /
//   104.2 and 101.2 / 109.2 at dim 256, no better than plain stores. AVX-512's 64-byte stores ran
//   5-18% faster than the grouped 16-byte ones at dims 128-256; they would need a clone per ISA.
// Hence: rows of 192 floats or more (dim 192 level to 1.2x, 256 and up 1.4-1.8x), short rows plain
// (they are bound by the row loads in flight, which the write-combining buffers compete with).

std::int64_t last_level_cache_bytes() {
  static const std::int64_t bytes = [] {
#if defined(_SC_LEVEL3_CACHE_SIZE)  // glibc's names
    for (const int level : {_SC_LEVEL4_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
      const long reported = sysconf(level);
      if (reported > 0) return static_cast<std::int64_t>(reported);
    }
#endif
    return std::int64_t{32} << 20;
  }();
  return bytes;
}

bool can_stream_rows(const float* out, std::int64_t dim) {
#if defined(__SSE2__)
  const std::int64_t row_bytes = dim * static_cast<std::int64_t>(sizeof(float));
  const auto line = static_cast<std::int64_t>(kCacheLineBytes);
  return reinterpret_cast<std::uintptr_t>(out) % kCacheLineBytes == 0 && row_bytes > 0 && row_bytes % line == 0;
#else
  (void)out;
  (void)dim;
  return false;
#endif
}

RowStores choose_row_stores(const float* out, std::int64_t dim, std::int64_t count, std::int64_t cache_bytes) {
  const std::int64_t row_bytes = dim * static_cast<std::int64_t>(sizeof(float));
  const bool long_rows = can_stream_rows(out, dim) && row_bytes >= kStreamingMinRowBytes;
  return long_rows && count > cache_bytes / row_bytes ? RowStores::streaming : RowStores::cached;
}

}  // namespace embedkit::cpu
