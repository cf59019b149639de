#pragma once
// Software prefetch of table rows for the random gathers (lookup, pooled lookup). A random row read
// is a cache miss; the hardware prefetchers cannot guess the next id, so the loops ask for the row
// a fixed number of positions ahead, keeping that many misses in flight per thread.

#include <cstddef>
#include <cstdint>

namespace embedkit::cpu {

/// Positions ahead whose row is requested. On the first machine of this class (Intel, 2 threads,
/// 2 GiB table, uniform ids) 8 ahead gathered 64-float rows 1.15x faster than no prefetch and 16
/// ahead 1.08x. On the current one (AMD EPYC, 32 MiB L3), pooled sums of bags of 8 and 32 at dim
/// 64, the distance alternating call by call in one process (129 calls each): 8 ahead took 27.5 ms
/// at best and 33.7 ms at the median, 16 ahead 20.1 and 28.7. Plain lookups were level between
/// the two; the fold of the train step too (same method: 16 against 32 and 48).
constexpr std::int64_t kPrefetchDistance = 16;

/// The cache level a prefetch fills (the value is __builtin_prefetch's locality argument).
/// Rows that are only read, once (lookup, pooled lookup), go to L2, measured faster; the likely
/// reason (not measured: no PMU here) is that an L1 prefetch holds one of the core's few L1 miss
/// buffers until its line arrives, capping the misses in flight below what 16 rows of several
/// lines each need. On the current machine (AMD EPYC, 2 threads, 2 GiB table,
/// uniform ids, the level alternating call by call in one process, 15 calls each, best / median):
/// lookups at dim 64 took 20.7 / 22.4 ms into L2 against 24.7 / 27.9 into L1, at dim 256 101 / 109
/// against 135 / 144, pooled bags of 32 at dim 64 37.7 / 46.1 against 49.0 / 55.3. The train step's
/// prefetches (gradient rows, weights and state it updates) measured level between the two and
/// stay in L1.
enum class CacheLevel : int { l1 = 3, l2 = 2 };

/// Bytes of a cache line on the CPUs this library targets (x86-64, AArch64).
constexpr std::size_t kCacheLineBytes = 64;

/// Asks for every cache line of the `row_bytes` bytes at `row`, for reading, into `level`.
template <CacheLevel level = CacheLevel::l1>
inline void prefetch_row(const void* row, std::size_t row_bytes) {
  const char* bytes = static_cast<const char*>(row);
  for (std::size_t b = 0; b < row_bytes; b += kCacheLineBytes) {
    __builtin_prefetch(bytes + b, 0, static_cast<int>(level));
  }
}

}  // namespace embedkit::cpu
