#pragma once
// C++17, host and device. What each entry of a pooled batch receives of its bag's gradient, written
// as one row per entry, which the sparse gradient then folds like a plain batch: the bag's
// gradient times w / denominator (sum, mean, sqrtn), or, for max, the column's gradient at the
// column's first maximal entry, as the forward pass recorded it (pooled_kernel.hpp's argmax). The
// same products the CPU forms, so the fold is the CPU's.
// Launched with plan_groups(bags, dim); tests run the body for every coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/pooling_math.hpp>

#include "launch_plan.hpp"

#include <cstdint>

namespace embedkit::kernels {

template <class Index>
struct EntryRowsArgs {
  const std::int64_t* argmax;  // (bags, dim) from the forward pass, for max; NULL otherwise
  std::int64_t dim;
  const Index* ids;
  const std::int64_t* offsets;
  std::int64_t bags;
  const float* sample_weights;  // NULL: all ones
  PoolingMode mode;
  detail::Padding padding;
  const float* grad_bags;  // (bags, dim)
  float* rows;             // (entries, dim)
};

template <class Index>
EK_HOST_DEVICE inline void entry_rows_body(std::int64_t block, int thread, const GroupPlan& plan,
                                           const EntryRowsArgs<Index>& a) {
  const std::int64_t bag = block * plan.groups_per_block + thread / plan.lanes;
  if (bag >= a.bags) return;
  const std::int64_t begin = a.offsets[bag], end = a.offsets[bag + 1];
  for (std::int64_t c = thread % plan.lanes; c < a.dim; c += plan.lanes) {
    const float g = a.grad_bags[bag * a.dim + c];
    if (a.mode == PoolingMode::max) {
      const std::int64_t best = a.argmax[bag * a.dim + c];
      for (std::int64_t j = begin; j < end; ++j) a.rows[j * a.dim + c] = j == best ? g : 0.0f;
      continue;
    }
    detail::BagStats stats;
    for (std::int64_t j = begin; j < end; ++j) {
      if (!a.padding.is(static_cast<std::int64_t>(a.ids[j]))) stats.add(a.sample_weights != nullptr ? a.sample_weights[j] : 1.0f);
    }
    const float denominator = detail::pool_denominator(a.mode, stats);
    for (std::int64_t j = begin; j < end; ++j) {
      const bool counted = !a.padding.is(static_cast<std::int64_t>(a.ids[j])) && denominator != 0.0f;
      const float w = a.sample_weights != nullptr ? a.sample_weights[j] : 1.0f;
      a.rows[j * a.dim + c] = g * (counted ? w / denominator : 0.0f);
    }
  }
}

}  // namespace embedkit::kernels
