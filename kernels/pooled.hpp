#pragma once
// C++17. Host entry point of the CUDA pooled lookup (kernels/pooled.cu); all pointers are device memory.

#include <embedkit/detail/pooled_batch.hpp>

#include <cstdint>

namespace embedkit::kernels {

/// Launches the pooled lookup of `batch` over `input_dim` rows of `dim` weights on `stream` (a
/// cudaStream_t); asynchronous.
/// Out-of-range ids count as rows of zeros and set *out_of_range to 1 (when not NULL). For max,
/// a non-NULL `argmax` (bags × dim) receives each column's first maximal position. 16-byte loads
/// and stores when dim % 4 == 0 and the matrices are aligned. Throws embedkit::Error(internal) if
/// the launch fails.
template <class Index>
void run_pooled(const float* weights, std::int64_t input_dim, std::int64_t dim, const detail::PooledBatch<Index>& batch,
                float* out, unsigned int* out_of_range, std::int64_t* argmax, void* stream);

}  // namespace embedkit::kernels
