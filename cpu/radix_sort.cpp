#include "radix_sort.hpp"

#include "parallel.hpp"

#include <omp.h>

#include <algorithm>

namespace embedkit::cpu {
namespace {

constexpr int kDigitBits = 11;  // 2048 buckets: few passes, histograms that stay in L1

}  // namespace

void radix_sort_bits(detail::RecycledVector<std::uint64_t>& keys, detail::RecycledVector<std::uint64_t>& scratch,
                     int low_bit, int bits) {
  const std::int64_t n = static_cast<std::int64_t>(keys.size());
  scratch.resize(keys.size());
  const int threads = n >= kParallelMinIds ? omp_get_max_threads() : 1;
  std::vector<std::int64_t> counts;
  for (int shift = low_bit; shift < low_bit + bits; shift += kDigitBits) {
    const int digit_bits = std::min(kDigitBits, low_bit + bits - shift);
    const std::int64_t buckets = std::int64_t{1} << digit_bits;
    const std::uint64_t mask = static_cast<std::uint64_t>(buckets - 1);
    counts.assign(static_cast<std::size_t>(threads * buckets), 0);
    // Each thread owns one contiguous chunk: counts per (thread, digit), then offsets so that
    // chunk t's keys of digit d land after every earlier chunk's: a stable scatter.
#pragma omp parallel num_threads(threads)
    {
      // The team may be smaller than asked for; chunks follow the team actually running.
      const std::int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
      const std::int64_t begin = n * t / team, end = n * (t + 1) / team;
      std::int64_t* count = counts.data() + t * buckets;
      for (std::int64_t i = begin; i < end; ++i) ++count[(keys[i] >> shift) & mask];
#pragma omp barrier
#pragma omp single
      {
        std::int64_t offset = 0;
        for (std::int64_t d = 0; d < buckets; ++d) {
          for (std::int64_t u = 0; u < team; ++u) {
            const std::int64_t c = counts[u * buckets + d];
            counts[u * buckets + d] = offset;
            offset += c;
          }
        }
      }
      for (std::int64_t i = begin; i < end; ++i) scratch[count[(keys[i] >> shift) & mask]++] = keys[i];
    }
    keys.swap(scratch);
  }
}

}  // namespace embedkit::cpu
