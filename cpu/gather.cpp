#include "gather.hpp"

#include "index_scan.hpp"
#include "parallel.hpp"
#include "prefetch.hpp"
#include "stream_stores.hpp"

#include <cstring>

namespace embedkit::cpu {

template <class Index>
void gather_rows(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                 detail::Padding padding, float* out, RowStores stores) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  const bool stream = stores == RowStores::streaming && can_stream_rows(out, dim);
  const auto wanted = [=](std::int64_t id) { return id_in_range(id, input_dim) && !padding.is(id); };
#pragma omp parallel if (count * dim >= kParallelMinFloats)
  {
#pragma omp for schedule(static) nowait
    for (std::int64_t i = 0; i < count; ++i) {
      if (i + kPrefetchDistance < count) {
        const auto ahead = static_cast<std::int64_t>(ids[i + kPrefetchDistance]);
        if (wanted(ahead)) prefetch_row<CacheLevel::l2>(weights + ahead * dim, row_bytes);
      }
      const auto id = static_cast<std::int64_t>(ids[i]);
      float* destination = out + i * dim;
      if (stream) {
        if (wanted(id)) {
          stream_row(weights + id * dim, dim, destination);
        } else {
          stream_zeros(dim, destination);
        }
      } else if (wanted(id)) {
        std::memcpy(destination, weights + id * dim, row_bytes);
      } else {
        std::memset(destination, 0, row_bytes);
      }
    }
    if (stream) finish_streaming();
  }
}

template <class Index>
void gather_rows(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                 detail::Padding padding, float* out) {
  gather_rows(weights, input_dim, dim, ids, count, padding, out,
              choose_row_stores(out, dim, count, last_level_cache_bytes()));
}

template void gather_rows(const float*, std::int64_t, std::int64_t, const std::int32_t*, std::int64_t, detail::Padding,
                          float*);
template void gather_rows(const float*, std::int64_t, std::int64_t, const std::int64_t*, std::int64_t, detail::Padding,
                          float*);
template void gather_rows(const float*, std::int64_t, std::int64_t, const std::int32_t*, std::int64_t, detail::Padding,
                          float*, RowStores);
template void gather_rows(const float*, std::int64_t, std::int64_t, const std::int64_t*, std::int64_t, detail::Padding,
                          float*, RowStores);

}  // namespace embedkit::cpu
