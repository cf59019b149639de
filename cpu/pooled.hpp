#pragma once
// Pooled lookup on the CPU (OpenMP over bags): out[b, :] = combine(weights[ids[j], :] for j in bag b).

#include <embedkit/detail/padding.hpp>
#include <embedkit/pooling.hpp>

#include "isa.hpp"

#include <cstdint>

namespace embedkit::cpu {

/// Pools the rows of each bag b = ids[offsets[b] .. offsets[b+1]) into out[b, :]. Entries that are
/// `padding` are skipped and not counted; ids outside [0, input_dim) (already accepted by
/// the caller under zero_fill) count as rows of zeros. `sample_weights` may be NULL (all ones).
/// Offsets are valid CSR: offsets[0] = 0, non-decreasing. Sum, mean and sqrtn run compiled for
/// `isa` (the same bits on each; tests ask for each one this CPU supports).
template <class Index>
void pooled_lookup(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                   const std::int64_t* offsets, std::int64_t bags, const float* sample_weights,
                   PoolingMode mode, detail::Padding padding, float* out, Isa isa = best_isa());

}  // namespace embedkit::cpu
