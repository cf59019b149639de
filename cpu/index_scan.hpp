#pragma once
// Index validation on the CPU: a parallel pass that only counts bad ids, and a serial scan for the
// first one, run only when the count is not zero (so the message costs nothing on good input).

#include <embedkit/detail/id_range.hpp>

#include "backend/backend.hpp"

#include <cstdint>

namespace embedkit::cpu {

/// Number of ids outside [0, input_dim); negative ids count as outside.
template <class Index>
std::int64_t count_out_of_range(const Index* ids, std::int64_t count, std::int64_t input_dim);

/// Flat position of the first id outside [0, input_dim), or -1 when there is none.
template <class Index>
std::int64_t first_out_of_range(const Index* ids, std::int64_t count, std::int64_t input_dim);

/// How many of `count` ids lie outside [0, input_dim), and the first of them by position: the
/// counting pass, then the serial scan only when the count is not zero.
template <class Index>
detail::IdCheck scan_ids(const Index* ids, std::int64_t count, std::int64_t input_dim);

/// Whether `id` lies in [0, input_dim): the shared rule of detail/id_range.hpp.
using detail::id_in_range;

}  // namespace embedkit::cpu
