#pragma once
// C++17, host and device. What each entry of a pooled batch receives of its bag's gradient, written
// as one row per entry, which the sparse gradient then folds like a plain batch: the bag's
// gradient times w / denominator (sum, mean, sqrtn), or, for max, the column's gradient at the
// column's first maximal entry. The same products the CPU forms, so the fold is the CPU's.
// Launched with plan_groups(bags, dim); tests run the body for every coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/pooling_math.hpp>

#include "launch_plan.hpp"

#include <cstdint>

namespace embedkit::kernels {

template <class Index>
struct EntryRowsArgs {
  const float* weights;  // (input_dim, dim): the max mode's argmax reads them
  std::int64_t input_dim;
  std::int64_t dim;
  const Index* ids;
  const std::int64_t* offsets;
  std::int64_t bags;
  const float* sample_weights;  // NULL: all ones
  PoolingMode mode;
  std::int64_t padding_idx;
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
      std::int64_t best = -1;
      float best_value = 0.0f;
      for (std::int64_t j = begin; j < end; ++j) {
        const std::int64_t id = static_cast<std::int64_t>(a.ids[j]);
        if (id == a.padding_idx) continue;
        const bool in_range = static_cast<std::uint64_t>(id) < static_cast<std::uint64_t>(a.input_dim);
        const float v = in_range ? a.weights[id * a.dim + c] : 0.0f;
        if (best < 0 || v > best_value) {  // strictly greater: ties stay with the first position
          best = j;
          best_value = v;
        }
      }
      for (std::int64_t j = begin; j < end; ++j) a.rows[j * a.dim + c] = j == best ? g : 0.0f;
      continue;
    }
    detail::BagStats stats;
    for (std::int64_t j = begin; j < end; ++j) {
      if (static_cast<std::int64_t>(a.ids[j]) != a.padding_idx) stats.add(a.sample_weights != nullptr ? a.sample_weights[j] : 1.0f);
    }
    const float denominator = detail::pool_denominator(a.mode, stats);
    for (std::int64_t j = begin; j < end; ++j) {
      const bool counted = static_cast<std::int64_t>(a.ids[j]) != a.padding_idx && denominator != 0.0f;
      const float w = a.sample_weights != nullptr ? a.sample_weights[j] : 1.0f;
      a.rows[j * a.dim + c] = g * (counted ? w / denominator : 0.0f);
    }
  }
}

}  // namespace embedkit::kernels
