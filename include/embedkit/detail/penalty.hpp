#pragma once
// C++17, host and device. The regularization penalty l1·Σ|w| + l2·Σw² of a table's weights, as the
// CPU backend (cpu/host_ops_backend.cpp) and the CUDA kernel (kernels/table_ops.cu) both compute
// it: in double, in fixed chunks of kPenaltyChunk weights summed left to right, the chunks then
// added in order by the host. The chunking is what makes the sum independent of the thread count,
// and the CPU and the GPU agree bit for bit only while both cut the weights at the same places.

#include <embedkit/detail/host_device.hpp>

#include <cmath>
#include <cstdint>

namespace embedkit::detail {

/// Weights per chunk of the penalty sum.
inline constexpr std::int64_t kPenaltyChunk = std::int64_t{1} << 16;

/// How many chunks `count` weights make.
EK_HOST_DEVICE constexpr std::int64_t penalty_chunks(std::int64_t count) {
  return (count + kPenaltyChunk - 1) / kPenaltyChunk;
}

/// l1·Σ|w| + l2·Σw² over chunk k of `count` weights, in double, left to right.
EK_HOST_DEVICE inline double penalty_chunk(const float* weights, std::int64_t count, std::int64_t k, double l1,
                                           double l2) {
  const std::int64_t begin = k * kPenaltyChunk;
  const std::int64_t end = begin + kPenaltyChunk < count ? begin + kPenaltyChunk : count;
  double sum = 0.0;
  for (std::int64_t i = begin; i < end; ++i) {
    const double w = weights[i];
    sum += l1 * ::fabs(w) + l2 * w * w;
  }
  return sum;
}

}  // namespace embedkit::detail
