#pragma once
// C++17, host and device. The collectives of the row-wise kernels: a butterfly sum (and, for the
// max_norm renorm, a butterfly maximum of magnitudes) across the lanes of a group (a power of two,
// at most a warp). On the device they are __shfl_xor_sync; on the host, group_sum_host and
// group_max_magnitude_host run the very same pairing lane by lane, so a kernel's phases can be
// replayed on the CPU and give the device's bits.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/renorm_math.hpp>
#include <embedkit/detail/square_sum.hpp>

namespace embedkit::kernels {

#if defined(__CUDACC__)
/// The sum of `value` over the `lanes` lanes of this thread's group, in butterfly order; every
/// thread of the warp must call it (threads without work pass 0).
__device__ inline float group_sum(float value, int lanes) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset, lanes);
  return value;
}

/// A norm's Σ x² over the group: each of its two sums added in butterfly order.
__device__ inline detail::SquareSum group_sum(detail::SquareSum value, int lanes) {
  value.plain = group_sum(value.plain, lanes);
  value.scaled = group_sum(value.scaled, lanes);
  return value;
}

/// A double's sum over the group, in butterfly order (the max_norm renorm's norm terms).
__device__ inline double group_sum(double value, int lanes) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset, lanes);
  return value;
}

/// The largest magnitude over the group, NaN winning (detail::larger_magnitude), in butterfly order.
__device__ inline float group_max_magnitude(float value, int lanes) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) {
    value = detail::larger_magnitude(value, __shfl_xor_sync(0xffffffffu, value, offset, lanes));
  }
  return value;
}
#endif

/// The host twin of group_max_magnitude, paired the same way.
inline void group_max_magnitude_host(float* values, int lanes) {
  float next[32];
  for (int offset = lanes / 2; offset > 0; offset /= 2) {
    for (int i = 0; i < lanes; ++i) next[i] = detail::larger_magnitude(values[i], values[i ^ offset]);
    for (int i = 0; i < lanes; ++i) values[i] = next[i];
  }
}

/// The host twin: `values[i]` is lane i's value (a float, a double or a SquareSum); on return every entry
/// holds the group's sum, paired exactly as group_sum pairs it.
template <class Value>
inline void group_sum_host(Value* values, int lanes) {
  Value next[32];
  for (int offset = lanes / 2; offset > 0; offset /= 2) {
    for (int i = 0; i < lanes; ++i) next[i] = values[i] + values[i ^ offset];
    for (int i = 0; i < lanes; ++i) values[i] = next[i];
  }
}

}  // namespace embedkit::kernels
