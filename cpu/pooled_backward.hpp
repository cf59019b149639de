#pragma once
// What each entry of a pooled lookup receives of its bag's gradient (the backward of cpu/pooled).

#include <embedkit/detail/pooled_batch.hpp>
#include <embedkit/detail/stored_row.hpp>

#include <cstdint>

namespace embedkit::cpu {

/// For sum, mean and sqrtn: scales[j] = batch.entry_scale(j, the denominator of j's bag), so entry
/// j receives scales[j] × the bag's gradient (0 for padding entries and bags whose denominator is
/// 0), and bag_of[j] = the bag of entry j.
template <class Index>
void pooled_entry_scales(const detail::PooledBatch<Index>& batch, float* scales, std::int64_t* bag_of);

/// For sum, mean and sqrtn of a batch without per-sample weights (batch.sample_weights NULL), what
/// each counted entry of bag b receives: scales[b] = 1 / (b's denominator), the value
/// pooled_entry_scales gives each of them (0 for a bag whose denominator is 0).
template <class Index>
void pooled_bag_scales(const detail::PooledBatch<Index>& batch, float* scales);

/// For a mode that picks entries (max): argmax[b·dim + c] = the position of bag b's entry that
/// column c picks (detail::replaces_pick: the first maximal one), -1 for a bag without counted
/// entries, recomputed from the rows (`input_dim` of `dim` weights) as the forward chose it.
template <class T, class Index>
void pooled_argmax(const T* weights, std::int64_t input_dim, std::int64_t dim, const detail::PooledBatch<Index>& batch,
                   std::int64_t* argmax);

}  // namespace embedkit::cpu
