#pragma once
// C++17, host and device. What each entry of a pooled batch receives of its bag's gradient, written
// as one row per entry, which the sparse gradient then folds like a plain batch: the bag's
// gradient times w / denominator (sum, mean, sqrtn), or, for max, the column's gradient at the
// column's first maximal entry, as the forward pass recorded it (pooled_kernel.hpp's argmax). The
// same products the CPU forms, so the fold is the CPU's.
// Launched with plan_groups(bags, dim); tests run the body for every coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/pooled_batch.hpp>
#include <embedkit/detail/pooling_math.hpp>

#include "launch_plan.hpp"

#include <cstdint>

namespace embedkit::kernels {

template <class Index>
struct EntryRowsArgs {
  const std::int64_t* argmax;  // (bags, dim) from the forward pass, for max; NULL otherwise
  std::int64_t dim;
  detail::PooledBatch<Index> batch;
  const float* grad_bags;  // (bags, dim)
  float* rows;             // (entries, dim)
};

template <class Index>
EK_HOST_DEVICE inline void entry_rows_body(std::int64_t block, int thread, const GroupPlan& plan,
                                           const EntryRowsArgs<Index>& a) {
  const detail::PooledBatch<Index>& b = a.batch;
  const std::int64_t bag = block * plan.groups_per_block + thread / plan.lanes;
  if (bag >= b.bags) return;
  const std::int64_t begin = b.offsets[bag], end = b.offsets[bag + 1];
  for (std::int64_t c = thread % plan.lanes; c < a.dim; c += plan.lanes) {
    const float g = a.grad_bags[bag * a.dim + c];
    if (detail::picks_entry(b.mode)) {
      const std::int64_t best = a.argmax[bag * a.dim + c];
      for (std::int64_t j = begin; j < end; ++j) a.rows[j * a.dim + c] = j == best ? g : 0.0f;
      continue;
    }
    const float denominator = b.denominator(bag);
    for (std::int64_t j = begin; j < end; ++j) a.rows[j * a.dim + c] = g * b.entry_scale(j, denominator);
  }
}

}  // namespace embedkit::kernels
