#pragma once
// C++17, host and device. The pooled lookup's per-thread body, launched with plan_groups(bags,
// dim): a group of lanes per bag, each lane owning columns c = lane, lane + lanes, ...; each column accumulates in a
// register, left to right in position order, with the arithmetic of
// include/embedkit/detail/pooling_math.hpp, as the CPU does. The __global__ wrapper is in
// pooled.cu; tests run this body for every coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/pooling_math.hpp>

#include "launch_plan.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// Arguments of one pooled lookup (see cpu/pooled.hpp for the semantics).
template <class Index>
struct PooledArgs {
  const float* weights;
  std::int64_t input_dim;
  std::int64_t dim;
  const Index* ids;
  const std::int64_t* offsets;
  std::int64_t bags;
  const float* sample_weights;  ///< NULL: all ones
  PoolingMode mode;
  std::int64_t padding_idx;     ///< -1 for none
  float* out;                   ///< (bags, dim)
};

/// The work of thread `thread` of block `block`.
template <class Index>
EK_HOST_DEVICE inline void pooled_body(std::int64_t block, int thread, const GroupPlan& plan,
                                       const PooledArgs<Index>& a) {
  const std::int64_t bag = block * plan.groups_per_block + thread / plan.lanes;
  if (bag >= a.bags) return;
  const int lane = thread % plan.lanes;
  for (std::int64_t c = lane; c < a.dim; c += plan.lanes) {
    detail::BagStats stats;
    float pooled = 0.0f;
    bool seen = false;  // max: the first counted entry initialises the maximum
    for (std::int64_t j = a.offsets[bag]; j < a.offsets[bag + 1]; ++j) {
      const std::int64_t id = static_cast<std::int64_t>(a.ids[j]);
      if (id == a.padding_idx) continue;
      const float w = a.sample_weights != nullptr ? a.sample_weights[j] : 1.0f;
      stats.add(w);
      const bool in_range = static_cast<std::uint64_t>(id) < static_cast<std::uint64_t>(a.input_dim);
      const float v = in_range ? a.weights[id * a.dim + c] : 0.0f;
      if (a.mode == PoolingMode::max) {
        pooled = !seen || v > pooled ? v : pooled;
        seen = true;
      } else if (in_range) {
        pooled += a.sample_weights != nullptr ? w * v : v;
      }
    }
    const float denominator = detail::pool_denominator(a.mode, stats);
    a.out[bag * a.dim + c] = denominator != 1.0f ? detail::pool_finish(pooled, denominator) : pooled;
  }
}

}  // namespace embedkit::kernels
