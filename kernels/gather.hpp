#pragma once
// C++17. Host entry point of the CUDA row gather (kernels/gather.cu); all pointers are device memory.

#include <embedkit/detail/padding.hpp>

#include <cstdint>

namespace embedkit::kernels {

/// Launches out[i, :] = weights[ids[i], :] on `stream` (a cudaStream_t), writing zeros for
/// `padding` and out-of-range ids, and setting *out_of_range to 1 when any id is
/// outside [0, input_dim). Asynchronous; throws embedkit::Error(internal) if the launch fails.
template <class Index>
void run_gather(const float* weights, std::int64_t input_dim, std::int64_t dim, const Index* ids, std::int64_t count,
                detail::Padding padding, float* out, unsigned int* out_of_range, void* stream);

}  // namespace embedkit::kernels
