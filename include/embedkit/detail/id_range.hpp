#pragma once
// C++17, host and device. Whether an id names a row: the one range rule of every lookup, fold and
// scan, on the CPU and in the kernels. One unsigned comparison covers both ends: a negative id
// becomes a huge unsigned value.

#include <embedkit/detail/host_device.hpp>

#include <cstdint>

namespace embedkit::detail {

/// Whether `id` lies in [0, input_dim).
template <class Index>
EK_HOST_DEVICE inline bool id_in_range(Index id, std::int64_t input_dim) {
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(id)) < static_cast<std::uint64_t>(input_dim);
}

}  // namespace embedkit::detail
