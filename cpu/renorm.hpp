#pragma once
// torch's max_norm on the CPU: the looked-up rows renormalised in place before a lookup reads them,
// with the norm and scale of include/embedkit/detail/renorm_math.hpp.

#include <embedkit/detail/renorm_math.hpp>
#include <embedkit/detail/stored_row.hpp>

#include <cstdint>

namespace embedkit::cpu {

/// The p-norm of one row of `dim` weights under `rule`, its terms summed in column order.
float renorm_norm(const float* row, std::int64_t dim, const detail::RenormRule& rule);

/// Scales `row` by detail::renorm_scale when its norm exceeds rule.max_norm; leaves it otherwise.
void renorm_row(float* row, std::int64_t dim, const detail::RenormRule& rule);

/// renorm_row on rows ids[0..count) of `weights`, in parallel: the ids must be distinct (each row
/// belongs to one thread) and in range. Every row is computed alone, so the result does not depend
/// on the thread count.
/// Each row ids[k] of rows stored as T renormalised (narrow rows: in float32, rounded back to nearest).
template <class T>
void renorm_rows(T* weights, std::int64_t dim, const std::int64_t* ids, std::int64_t count,
                 const detail::RenormRule& rule);

}  // namespace embedkit::cpu
