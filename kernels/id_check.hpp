#pragma once
// C++17. Host entry point of the bounds check's second pass (kernels/id_check.cu); device memory.

#include <cstdint>

namespace embedkit::kernels {

/// How many of `count` ids lie outside [0, input_dim), the first such position and its id.
struct OutOfRangeIds {
  std::int64_t count = 0;
  std::int64_t first_position = -1;
  std::int64_t first_id = 0;
};

/// Counts the out-of-range ids and finds the first, with `scratch` (16 bytes of device memory) for
/// the tallies; synchronises `stream` (a cudaStream_t) to read them. Run only once an operation's
/// flag said there is one, so good batches never pay for it. Throws embedkit::Error on failure.
template <class Index>
OutOfRangeIds run_find_out_of_range(const Index* ids, std::int64_t count, std::int64_t input_dim, void* scratch,
                                    void* stream);

}  // namespace embedkit::kernels
