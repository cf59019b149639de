#pragma once
// Pooled lookup on the CPU (OpenMP over bags): out[b, :] = combine(weights[ids[j], :] for j in bag b).

#include <embedkit/detail/pooled_batch.hpp>
#include <embedkit/detail/stored_row.hpp>

#include "backend/host_ops.hpp"
#include "isa.hpp"

#include <cstdint>
#include <span>

namespace embedkit::cpu {

/// Pools the rows (`input_dim` rows of `dim` weights) of each bag b of `batch` into out[b, :].
/// Padding entries are skipped and not counted; ids outside [0, input_dim) (already accepted by
/// the caller under zero_fill) count as rows of zeros. Sum, mean and sqrtn run compiled for `isa`
/// (the same bits on each; tests ask for each one this CPU supports).
/// Pooled lookups of rows stored as T (float, float16 or bfloat16; the sums are float32).
template <class T, class Index>
void pooled_lookup(const T* weights, std::int64_t input_dim, std::int64_t dim, const detail::PooledBatch<Index>& batch,
                   float* out, Isa isa = best_isa());

/// pooled_lookup of every job, in one parallel region whose work is split by bytes across the jobs:
/// the jobs are the features of one batch (each the same number of bags, one per sample), cut into
/// ranges of samples of about equal bytes over all jobs (so one big table and many small ones keep
/// every thread busy). Each bag's arithmetic is pooled_lookup's: a job's results are bitwise those
/// of pooled_lookup alone. Error(internal) for jobs of different bag counts.
template <class Index>
void pooled_lookup_many(std::span<const detail::PooledJob<Index>> jobs, Isa isa = best_isa());

}  // namespace embedkit::cpu
