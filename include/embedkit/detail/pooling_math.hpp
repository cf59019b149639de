#pragma once
// C++17, host and device. The arithmetic of one bag of a pooled lookup, shared by the CPU path and
// the CUDA kernels so both round the same way: entries accumulate in float, left to right in
// position order, then the sum is divided by the mode's denominator.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/padding.hpp>
#include <embedkit/pooling.hpp>

#include <cmath>
#include <cstdint>

namespace embedkit::detail {

/// The running statistics of one bag (w = 1 for every entry without per-sample weights).
struct BagStats {
  // 2^-64 and 2^64: Σ(w·2^-64)² holds any float weights without overflow (w² of a weight of 1e20
  // is past float32's 3.4e38), and both scalings are exact powers of two.
  static constexpr float kDown = 5.42101086242752217e-20f, kUp = 18446744073709551616.0f;
  float weight_sum = 0.0f;         // Σ w over the counted entries
  float weight_square_sum = 0.0f;  // Σ w², as the denominator of ordinary weights is computed
  float scaled_square_sum = 0.0f;  // Σ (w·2^-64)², used only where Σ w² overflowed
  EK_HOST_DEVICE void add(float w) {
    weight_sum += w;
    weight_square_sum += w * w;
    const float scaled = w * kDown;
    scaled_square_sum += scaled * scaled;
  }
};

/// What the bag's weighted sum is divided by; 0 means the bag pools to zeros (an empty bag, or
/// weights that cancel), never a division by zero. sqrtn's √Σw² is sqrtf(Σw²) bit for bit where
/// Σw² is finite, and 2^64·√Σ(w·2^-64)² where it overflowed (finite up to weights near float32's
/// limit, instead of an infinite denominator that pooled every such bag to zeros).
EK_HOST_DEVICE inline float pool_denominator(PoolingMode mode, const BagStats& stats) {
  switch (mode) {
    case PoolingMode::mean: return stats.weight_sum;
    case PoolingMode::sqrtn:
      if (stats.weight_square_sum <= 3.40282347e38f) return ::sqrtf(stats.weight_square_sum);
      return BagStats::kUp * ::sqrtf(stats.scaled_square_sum);
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
