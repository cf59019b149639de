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

/// The denominator of the bag of entries [begin, end): its counted entries are those that are not
/// `padding`, each weighing sample_weights[j] (1 when NULL).
template <class Index>
EK_HOST_DEVICE inline float bag_denominator(PoolingMode mode, const Index* ids, std::int64_t begin, std::int64_t end,
                                            const float* sample_weights, Padding padding) {
  BagStats stats;
  for (std::int64_t j = begin; j < end; ++j) {
    if (!padding.is(static_cast<std::int64_t>(ids[j]))) stats.add(sample_weights != nullptr ? sample_weights[j] : 1.0f);
  }
  return pool_denominator(mode, stats);
}

/// The pooled value of one column from its accumulated sum (or max) and the bag's denominator.
EK_HOST_DEVICE inline float pool_finish(float accumulated, float denominator) {
  return denominator == 0.0f ? 0.0f : accumulated / denominator;
}

}  // namespace embedkit::detail
