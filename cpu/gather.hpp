#pragma once
// Plain lookups on the CPU: each id's row copied to its output row, from rows stored as float,
// float16 or bfloat16 (T) into an output of float or of T (Out); padding and ids outside the table
// read as zeros.

#include <embedkit/detail/padding.hpp>
#include <embedkit/detail/stored_row.hpp>

#include "row_stores.hpp"

#include <cstdint>

namespace embedkit::cpu {

template <class T, class Out, class Index>
void gather_rows(const T* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                 detail::Padding padding, Out* out, RowStores stores);

template <class T, class Out, class Index>
void gather_rows(const T* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                 detail::Padding padding, Out* out);

}  // namespace embedkit::cpu
