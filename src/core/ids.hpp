#pragma once
// A batch's ids as every layer reads them on the host: typed as stored (int32 or int64), their
// bytes, and the distinct ones among them.

#include <embedkit/tensor.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace embedkit::detail {

/// Bytes of `count` ids of `type`.
constexpr std::size_t id_bytes(IndexType type, std::int64_t count) {
  return static_cast<std::size_t>(count) * (type == IndexType::int32 ? 4 : 8);
}

/// Bytes of the ids of `indices`.
inline std::size_t index_bytes(const IndexTensor& indices) { return id_bytes(indices.type(), indices.size()); }

/// Calls body(ids) with `data` typed as `type` says: the one int32/int64 dispatch, for a caller's
/// tensor (with_ids below) and for ids on a backend (backend.hpp) alike.
template <class Body>
inline decltype(auto) with_typed_ids(const void* data, IndexType type, Body&& body) {
  if (type == IndexType::int32) return body(static_cast<const std::int32_t*>(data));
  return body(static_cast<const std::int64_t*>(data));
}

/// The ids of `indices` as `Index` (the type they are stored as).
template <class Index>
inline const Index* ids_of(const IndexTensor& indices) {
  return static_cast<const Index*>(indices.data());
}

/// Calls body(ids) with the ids of `indices` typed as they are stored.
template <class Body>
inline decltype(auto) with_ids(const IndexTensor& indices, Body&& body) {
  return with_typed_ids(indices.data(), indices.type(), std::forward<Body>(body));
}

/// The distinct ids of `ids` in [0, input_dim), sorted.
template <class Index>
std::vector<std::int64_t> distinct_in_range(const Index* ids, std::int64_t count, std::int64_t input_dim);
std::vector<std::int64_t> distinct_in_range(const IndexTensor& indices, std::int64_t input_dim);

/// The place of `id` in `sorted` (distinct, increasing), or -1 when it is not there.
std::int64_t slot_in(std::span<const std::int64_t> sorted, std::int64_t id);

/// The distinct in-range ids of a batch, sorted, and each position's index among them (-1 for an
/// id outside the table, read as zeros under zero_fill).
struct DistinctIds {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> slot_of;
};

DistinctIds distinct_ids(const IndexTensor& indices, std::int64_t input_dim);

}  // namespace embedkit::detail
