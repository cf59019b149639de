#pragma once
// Software prefetch of table rows for the random gathers (lookup, pooled lookup). A random row read
// is a cache miss; the hardware prefetchers cannot guess the next id, so the loops ask for the row
// a fixed number of positions ahead, keeping that many misses in flight per thread.

#include <cstddef>
#include <cstdint>

namespace embedkit::cpu {

/// Positions ahead whose row is requested: enough misses in flight to hide DRAM latency at every
/// row width from 64 bytes up, few enough that prefetched lines are still cached when used.
constexpr std::int64_t kPrefetchDistance = 16;

/// Asks for every cache line of the `row_bytes` bytes at `row`, for reading.
inline void prefetch_row(const float* row, std::size_t row_bytes) {
  constexpr std::size_t kCacheLine = 64;
  const char* bytes = reinterpret_cast<const char*>(row);
  for (std::size_t b = 0; b < row_bytes; b += kCacheLine) __builtin_prefetch(bytes + b, 0, 3);
}

}  // namespace embedkit::cpu
