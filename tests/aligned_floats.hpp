#pragma once
// Float storage starting on a given alignment, for tests of kernels whose fast paths need one
// (16 bytes as cudaMalloc gives for vector loads, 64 bytes for streamed cache lines).

#include <cstddef>
#include <cstdlib>

namespace embedkit::testing {

/// `count` floats (uninitialised) starting on `alignment` bytes, with one alignment's worth of
/// slack after them so a test can shift the start off the alignment.
struct AlignedFloats {
  AlignedFloats(std::size_t count, std::size_t alignment)
      : data(static_cast<float*>(
            std::aligned_alloc(alignment, ((count * sizeof(float) + alignment - 1) / alignment + 1) * alignment))),
        size(count) {}
  ~AlignedFloats() { std::free(data); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  float* data;
  std::size_t size;
};

}  // namespace embedkit::testing
