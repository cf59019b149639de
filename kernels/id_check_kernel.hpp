#pragma once
// C++17, host and device. The second pass of the fused bounds check: the operations' own pass
// raises a flag when any id is outside [0, input_dim); only then does this pass run, one thread a
// position, to count them and find the first. The __global__ wrapper (id_check.cu) folds what each
// thread finds with atomicAdd and atomicMin, whose results do not depend on the order; tests run
// the body for every coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>

#include <cstdint>

namespace embedkit::kernels {

/// Threads per block of the second pass.
constexpr int kIdCheckBlockThreads = 256;

/// The ids of one operation.
template <class Index>
struct IdCheckArgs {
  const Index* ids;
  std::int64_t count;
  std::int64_t input_dim;
};

/// The position thread `thread` of block `block` looks at, if its id is out of range; -1 otherwise.
template <class Index>
EK_HOST_DEVICE inline std::int64_t out_of_range_position(std::int64_t block, int thread, const IdCheckArgs<Index>& a) {
  const std::int64_t i = block * kIdCheckBlockThreads + thread;
  if (i >= a.count) return -1;
  const auto id = static_cast<std::int64_t>(a.ids[i]);
  return static_cast<std::uint64_t>(id) < static_cast<std::uint64_t>(a.input_dim) ? -1 : i;
}

}  // namespace embedkit::kernels
