#pragma once
// Software prefetch of table rows for the random gathers (lookup, pooled lookup). A random row read
// is a cache miss; the hardware prefetchers cannot guess the next id, so the loops ask for the row
// a fixed number of positions ahead, keeping that many misses in flight per thread.

#include <cstddef>
#include <cstdint>

namespace embedkit::cpu {

/// Positions ahead whose row is requested. Measured on this machine class (2 threads, 2 GiB table,
/// uniform ids): 8 rows ahead gathers 64-float rows 1.15x faster than no prefetch and 16 ahead
/// 1.08x; 256-float rows are bound by bandwidth and gain nothing, but lose nothing either.
constexpr std::int64_t kPrefetchDistance = 8;

/// Asks for every cache line of the `row_bytes` bytes at `row`, for reading.
inline void prefetch_row(const float* row, std::size_t row_bytes) {
  constexpr std::size_t kCacheLine = 64;
  const char* bytes = reinterpret_cast<const char*>(row);
  for (std::size_t b = 0; b < row_bytes; b += kCacheLine) __builtin_prefetch(bytes + b, 0, 3);
}

}  // namespace embedkit::cpu
