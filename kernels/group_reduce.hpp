#pragma once
// C++17, host and device. The one collective of the optimizer kernels: a butterfly sum across the
// lanes of a group (a power of two, at most a warp). On the device it is __shfl_xor_sync; on the
// host, group_sum_host runs the very same pairing lane by lane, so a kernel's phases can be
// replayed on the CPU and give the device's bits.

#include <embedkit/detail/host_device.hpp>
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
#endif

/// The host twin: `values[i]` is lane i's value (a float, or a SquareSum); on return every entry
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
