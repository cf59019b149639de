#include "gather.hpp"

#include "index_scan.hpp"
#include "parallel.hpp"
#include "prefetch.hpp"
#include "stream_stores.hpp"
#include "widen_rows.hpp"

#include <cstring>
#include <type_traits>

namespace embedkit::cpu {
namespace {

// Row `from` (dim elements of T) as dim elements of Out: a copy of the bytes when the types agree,
// else each element widened (exact: Out is float whenever it differs from T).
template <class T, class Out>
inline void copy_row(const T* from, std::int64_t dim, Out* to) {
  if constexpr (std::is_same_v<T, Out>) {
    std::memcpy(to, from, static_cast<std::size_t>(dim) * sizeof(T));
  } else {
    static_assert(std::is_same_v<Out, float>, "a lookup writes float32 or the storage type");
    for (std::int64_t c = 0; c < dim; ++c) to[c] = detail::widen(from[c]);
  }
}

}  // namespace

template <class T, class Out, class Index>
void gather_rows(const T* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                 detail::Padding padding, Out* out, RowStores stores) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  // Streaming stores write float rows; a narrower output keeps the plain ones.
  constexpr bool kFloatRows = std::is_same_v<T, float> && std::is_same_v<Out, float>;
  bool stream = false;
  if constexpr (kFloatRows) stream = stores == RowStores::streaming && can_stream_rows(out, dim);
  const auto wanted = [=](std::int64_t id) { return id_in_range(id, input_dim) && !padding.is(id); };
  const bool f16c = has_f16c();  // float16 rows into float32: vcvtph2ps where the CPU has it
#pragma omp parallel if (count * dim >= kParallelMinFloats)
  {
#pragma omp for schedule(static) nowait
    for (std::int64_t i = 0; i < count; ++i) {
      if (i + kPrefetchDistance < count) {
        const auto ahead = static_cast<std::int64_t>(ids[i + kPrefetchDistance]);
        if (wanted(ahead)) prefetch_row<CacheLevel::l2>(weights + ahead * dim, row_bytes);
      }
      const auto id = static_cast<std::int64_t>(ids[i]);
      Out* destination = out + i * dim;
      if constexpr (kFloatRows) {
        if (stream) {
          if (wanted(id)) {
            stream_row(weights + id * dim, dim, destination);
          } else {
            stream_zeros(dim, destination);
          }
          continue;
        }
      }
      if (wanted(id)) {
        if constexpr (std::is_same_v<T, detail::float16> && std::is_same_v<Out, float>) {
          widen_float16_row(weights + id * dim, dim, destination, f16c);
          continue;
        }
        copy_row(weights + id * dim, dim, destination);
      } else {
        std::memset(static_cast<void*>(destination), 0, static_cast<std::size_t>(dim) * sizeof(Out));
      }
    }
    if (stream) finish_streaming();
  }
}

template <class T, class Out, class Index>
void gather_rows(const T* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                 detail::Padding padding, Out* out) {
  RowStores stores = RowStores::cached;
  if constexpr (std::is_same_v<Out, float>) stores = choose_row_stores(out, dim, count, last_level_cache_bytes());
  gather_rows(weights, input_dim, dim, ids, count, padding, out, stores);
}

#define EMBEDKIT_GATHER_ROWS(T, Out, Index)                                                                          \
  template void gather_rows(const T*, std::int64_t, std::int64_t, const Index*, std::int64_t, detail::Padding, Out*, \
                            RowStores);                                                                              \
  template void gather_rows(const T*, std::int64_t, std::int64_t, const Index*, std::int64_t, detail::Padding, Out*);
#define EMBEDKIT_GATHER_ROWS_OF(T)             \
  EMBEDKIT_GATHER_ROWS(T, float, std::int32_t) \
  EMBEDKIT_GATHER_ROWS(T, float, std::int64_t)
EMBEDKIT_GATHER_ROWS_OF(float)
EMBEDKIT_GATHER_ROWS_OF(detail::float16)
EMBEDKIT_GATHER_ROWS_OF(detail::bfloat16)
EMBEDKIT_GATHER_ROWS(detail::float16, detail::float16, std::int32_t)
EMBEDKIT_GATHER_ROWS(detail::float16, detail::float16, std::int64_t)
EMBEDKIT_GATHER_ROWS(detail::bfloat16, detail::bfloat16, std::int32_t)
EMBEDKIT_GATHER_ROWS(detail::bfloat16, detail::bfloat16, std::int64_t)
#undef EMBEDKIT_GATHER_ROWS_OF
#undef EMBEDKIT_GATHER_ROWS

}  // namespace embedkit::cpu
