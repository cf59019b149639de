#include "row_stores.hpp"

#include <unistd.h>

#include <cstdint>
#include <initializer_list>

namespace embedkit::cpu {

// Measured on this project's machine (AMD EPYC, 2 vCPUs, AVX-512, the VM reporting 320 MiB of L3
// to sysconf and 32 MiB to lscpu), a standalone copy of the gather loop, 2^20 uniform ids into a
// 2 GiB table, plain and streamed stores alternating call by call in one process (15-31 calls
// each, best / median ms): dim 64 20.4 / 31.9 plain against 28.7 / 38.7 streamed (slower: short
// rows are bound by the row loads in flight, which the write-combining buffers compete with);
// dim 128 level (37.7 / 43.4 against 45.6 / 48.9, then 47.9 / 56.9 against 45.2 / 51.0); dim 192
// 69.9 / 86.5 against 58.8 / 68.0; dim 256 105.0 / 115.2 against 69.4 / 76.2 and 97.6 / 110.2
// against 64.6 / 74.3; dim 512 217 / 230 against 127 / 134. A streaming copy of the same bytes
// took 52 ms at dim 256, so streamed rows reach about 0.7-0.8 of it against 0.5 for plain ones.
// Wider stores (AVX2, AVX-512) measured within 5-15% of these and stay out.

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

RowStores choose_row_stores(const float* out, std::int64_t dim, std::int64_t count, std::int64_t cache_bytes) {
  const std::int64_t row_bytes = dim * static_cast<std::int64_t>(sizeof(float));
  const bool line_aligned = reinterpret_cast<std::uintptr_t>(out) % kCacheLineBytes == 0;
  const bool whole_lines = row_bytes >= kStreamingMinRowBytes && row_bytes % kCacheLineBytes == 0;
  const bool streaming = streaming_stores_available() && line_aligned && whole_lines && count > cache_bytes / row_bytes;
  return streaming ? RowStores::streaming : RowStores::cached;
}

}  // namespace embedkit::cpu
