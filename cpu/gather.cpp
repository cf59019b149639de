#include "gather.hpp"

#include "index_scan.hpp"
#include "parallel.hpp"
#include "prefetch.hpp"

#include <cstring>

namespace embedkit::cpu {

// Streaming (non-temporal) stores for large outputs were tried and measured slower on this machine
// class: a gather of random rows is bound by the misses in flight, and write-combining buffers take
// the same fill buffers the row loads need. Regular stores through libc's memcpy it is.
template <class Index>
void gather_rows(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                 std::int64_t count, std::int64_t padding_idx, float* out) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  const auto wanted = [=](std::int64_t id) { return in_range(id, input_dim) && id != padding_idx; };
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMinFloats)
  for (std::int64_t i = 0; i < count; ++i) {
    if (i + kPrefetchDistance < count) {
      const auto ahead = static_cast<std::int64_t>(ids[i + kPrefetchDistance]);
      if (wanted(ahead)) prefetch_row<CacheLevel::l2>(weights + ahead * dim, row_bytes);
    }
    const auto id = static_cast<std::int64_t>(ids[i]);
    float* destination = out + i * dim;
    if (wanted(id)) {
      std::memcpy(destination, weights + id * dim, row_bytes);
    } else {
      std::memset(destination, 0, row_bytes);
    }
  }
}

template void gather_rows(const float*, std::int64_t, std::int64_t, const std::int32_t*, std::int64_t,
                          std::int64_t, float*);
template void gather_rows(const float*, std::int64_t, std::int64_t, const std::int64_t*, std::int64_t,
                          std::int64_t, float*);

}  // namespace embedkit::cpu
