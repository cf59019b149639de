#pragma once
// Row gather on the CPU (OpenMP): out[i, :] = weights[ids[i], :].

#include <embedkit/detail/padding.hpp>

#include "row_stores.hpp"

#include <cstdint>

namespace embedkit::cpu {

/// Copies row ids[i] of the (input_dim, dim) matrix `weights` to out[i, :] for i < count, written
/// with `stores` (RowStores::streaming falls back to cached stores where !can_stream_rows).
/// Rows of ids outside [0, input_dim) and of `padding` are written as zeros;
/// the caller has already rejected out-of-range ids unless it wants them zero-filled.
template <class Index>
void gather_rows(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                 detail::Padding padding, float* out, RowStores stores);

/// gather_rows with the stores choose_row_stores picks for this output and the last-level cache.
template <class Index>
void gather_rows(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                 detail::Padding padding, float* out);

}  // namespace embedkit::cpu
