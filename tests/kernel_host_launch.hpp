#pragma once
// Runs a kernel body on the CPU for every (block, thread) coordinate of a launch, in order, so a
// kernel's own code is checked without a GPU. Fits kernels without shared memory or barriers.

#include <cstdint>

namespace embedkit::testing {

template <class Body>
void host_launch(std::int64_t blocks, int threads_per_block, Body&& body) {
  for (std::int64_t block = 0; block < blocks; ++block) {
    for (int thread = 0; thread < threads_per_block; ++thread) body(block, thread);
  }
}

}  // namespace embedkit::testing
