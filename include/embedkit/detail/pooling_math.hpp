#pragma once
// C++17, host and device. The arithmetic of one bag of a pooled lookup, shared by the CPU path and
// the CUDA kernels so both round the same way: entries accumulate in float, left to right in
// position order, then the sum is divided by the mode's denominator.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/pooling.hpp>

#include <cmath>

namespace embedkit::detail {

/// The running statistics of one bag (w = 1 for every entry without per-sample weights).
struct BagStats {
  float weight_sum = 0.0f;         // Σ w over the counted entries
  float weight_square_sum = 0.0f;  // Σ w²
  EK_HOST_DEVICE void add(float w) {
    weight_sum += w;
    weight_square_sum += w * w;
  }
};

/// What the bag's weighted sum is divided by; 0 means the bag pools to zeros (an empty bag, or
/// weights that cancel), never a division by zero.
EK_HOST_DEVICE inline float pool_denominator(PoolingMode mode, const BagStats& stats) {
  switch (mode) {
    case PoolingMode::mean: return stats.weight_sum;
    case PoolingMode::sqrtn: return ::sqrtf(stats.weight_square_sum);
    case PoolingMode::sum:
    case PoolingMode::max: break;
  }
  return 1.0f;
}

/// The pooled value of one column from its accumulated sum (or max) and the bag's denominator.
EK_HOST_DEVICE inline float pool_finish(float accumulated, float denominator) {
  return denominator == 0.0f ? 0.0f : accumulated / denominator;
}

}  // namespace embedkit::detail
