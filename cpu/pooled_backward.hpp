#pragma once
// What each entry of a pooled lookup receives of its bag's gradient (the backward of cpu/pooled).

#include <embedkit/detail/padding.hpp>
#include <embedkit/pooling.hpp>

#include <cstdint>

namespace embedkit::cpu {

/// For sum, mean and sqrtn: scales[j] = w_j / (the denominator of j's bag), so entry j receives
/// scales[j] × the bag's gradient (0 for padding entries and bags whose denominator is 0), and
/// bag_of[j] = the bag of entry j. `sample_weights` may be NULL (all ones).
template <class Index>
void pooled_entry_scales(const Index* ids, const std::int64_t* offsets, std::int64_t bags, const float* sample_weights,
                         PoolingMode mode, detail::Padding padding, float* scales, std::int64_t* bag_of);

/// For sum, mean and sqrtn without per-sample weights, what each counted entry of bag b receives:
/// scales[b] = 1 / (b's denominator), the value pooled_entry_scales gives each of them (0 for a
/// bag whose denominator is 0).
template <class Index>
void pooled_bag_scales(const Index* ids, const std::int64_t* offsets, std::int64_t bags, PoolingMode mode,
                       detail::Padding padding, float* scales);

/// For max: argmax[b·dim + c] = the first position of bag b holding the maximum of column c
/// (-1 for a bag without entries), recomputed from the weights as the forward chose it.
template <class Index>
void pooled_argmax(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids,
                   const std::int64_t* offsets, std::int64_t bags, detail::Padding padding, std::int64_t* argmax);

}  // namespace embedkit::cpu
