#include "gather.hpp"

#include "index_scan.hpp"
#include "parallel.hpp"

#include <cstring>

namespace embedkit::cpu {

template <class Index>
void gather_rows(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                 std::int64_t count, std::int64_t padding_idx, float* out) {
  // libc's memcpy with a run-time size beats a compiler-inlined fixed-size copy for whole rows.
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMinFloats)
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t id = static_cast<std::int64_t>(ids[i]);
    float* destination = out + i * dim;
    if (in_range(id, input_dim) && id != padding_idx) {
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
