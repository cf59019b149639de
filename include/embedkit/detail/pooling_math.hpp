#pragma once
// C++17, host and device. The arithmetic of one bag of a pooled lookup, shared by the CPU path and
// the CUDA kernels so both round the same way: entries accumulate in float, left to right in
// position order, then the sum is divided by the mode's denominator.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/padding.hpp>
#include <embedkit/detail/square_sum.hpp>
#include <embedkit/pooling.hpp>

#include <cmath>
#include <cstdint>

namespace embedkit::detail {

/// The running statistics of one bag (w = 1 for every entry without per-sample weights).
struct BagStats {
  float weight_sum = 0.0f;  // Σ w over the counted entries
  SquareSum squares;        // Σ w², as the denominator of ordinary weights is computed
  EK_HOST_DEVICE void add(float w) {
    weight_sum += w;
    squares.add(w);
  }
};

/// What the bag's weighted sum is divided by; 0 means the bag pools to zeros (an empty bag, or
/// weights that cancel), never a division by zero. sqrtn's √Σw² is SquareSum::root: finite up to
/// weights near float32's limit, instead of an infinite denominator that pooled every such bag to zeros.
EK_HOST_DEVICE inline float pool_denominator(PoolingMode mode, const BagStats& stats) {
  switch (mode) {
    case PoolingMode::mean: return stats.weight_sum;
    case PoolingMode::sqrtn: return stats.squares.root();
    case PoolingMode::sum:
    case PoolingMode::max: break;
  }
  return 1.0f;
}

/// What an entry of a summing mode receives of its bag's gradient: its weight over the bag's
/// denominator; 0 for an entry not counted (padding) and for a bag whose denominator is 0 (pooled
/// to zeros). The CPU's scales (cpu/pooled_backward.cpp) and the kernels' entry rows
/// (kernels/pooled_grad_kernel.hpp) both take it from here, through PooledBatch::entry_scale.
EK_HOST_DEVICE inline float entry_scale(bool counted, float weight, float denominator) {
  return counted && denominator != 0.0f ? weight / denominator : 0.0f;
}

/// Whether the mode pools each column by picking one of the bag's entries (max) instead of a
/// weighted sum: its backward gives each column's gradient to the entry picked (the argmax), and
/// it takes no per-sample weights. Every such branch of the CPU, the kernels and the table asks this.
EK_HOST_DEVICE constexpr bool picks_entry(PoolingMode mode) { return mode == PoolingMode::max; }

/// For a picking mode: whether a counted entry's value `v` replaces the column's pick so far,
/// `current` (`first`: no counted entry yet, so `current` is meaningless). Strictly better only:
/// ties stay with the first position. The CPU's forward and argmax and the kernel's forward (which
/// records the argmax) all decide here, so they pick the same entry.
EK_HOST_DEVICE inline bool replaces_pick(PoolingMode mode, float v, float current, bool first) {
  if (first) return true;
  switch (mode) {
    case PoolingMode::max: return v > current;
    case PoolingMode::sum:
    case PoolingMode::mean:
    case PoolingMode::sqrtn: break;
  }
  return false;
}

/// The pooled value of one column from its accumulated sum (or max) and the bag's denominator.
EK_HOST_DEVICE inline float pool_finish(float accumulated, float denominator) {
  return denominator == 0.0f ? 0.0f : accumulated / denominator;
}

}  // namespace embedkit::detail
