#pragma once
// C++17, host and device. The regularization penalty l1·Σ|w| + l2·Σw² of a table's weights, as the
// CPU backend (cpu/host_ops_backend.cpp) and the CUDA kernel (kernels/table_ops.cu) both compute
// it: in double, in fixed chunks of kPenaltyChunk weights summed left to right, the chunks then
// added in order by the host. The chunking is what makes the sum independent of the thread count,
// and the CPU and the GPU agree bit for bit only while both cut the weights at the same places.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/stored_row.hpp>

#include <cmath>
#include <cstdint>

namespace embedkit::detail {

/// Weights per chunk of the penalty sum.
inline constexpr std::int64_t kPenaltyChunk = std::int64_t{1} << 16;

/// How many chunks `count` weights make.
EK_HOST_DEVICE constexpr std::int64_t penalty_chunks(std::int64_t count) {
  return (count + kPenaltyChunk - 1) / kPenaltyChunk;
}

/// One weight's term l1·|w| + l2·w², in double. A kernel may compute the terms of many weights at
/// once; only their addition is ordered (penalty_chunk).
EK_HOST_DEVICE inline double penalty_term(float weight, double l1, double l2) {
  const double w = weight;
  return l1 * ::fabs(w) + l2 * w * w;
}

/// The end of chunk k of `count` weights (its begin is k·kPenaltyChunk).
EK_HOST_DEVICE constexpr std::int64_t penalty_chunk_end(std::int64_t count, std::int64_t k) {
  return (k + 1) * kPenaltyChunk < count ? (k + 1) * kPenaltyChunk : count;
}

/// l1·Σ|w| + l2·Σw² over chunk k of `count` weights (float, float16 or bfloat16), in double: the
/// terms added left to right, starting from 0.0.
template <class T>
EK_HOST_DEVICE inline double penalty_chunk(const T* weights, std::int64_t count, std::int64_t k, double l1, double l2) {
  const std::int64_t end = penalty_chunk_end(count, k);
  double sum = 0.0;
  for (std::int64_t i = k * kPenaltyChunk; i < end; ++i) sum += penalty_term(widen(weights[i]), l1, l2);
  return sum;
}

}  // namespace embedkit::detail
