#pragma once
// The allocator embedkit's CUDA memory comes from: cudaMallocAsync / cudaFreeAsync on the
// backend's stream by default, or a framework's caching allocator set through
// ek_set_cuda_allocator. Process-wide; it can change only while embedkit holds no device memory,
// so every buffer is freed by the allocator that made it.

#include <cstddef>

namespace embedkit::kernels {

using CudaAllocate = void* (*)(std::size_t bytes, void* stream, void* context);
using CudaFree = void (*)(void* data, void* stream, void* context);

/// Installs `allocate` / `release` (both NULL: back to cudaMallocAsync). Throws
/// Error(invalid_argument) when only one is given or while device buffers are live.
void set_cuda_allocator(CudaAllocate allocate, CudaFree release, void* context);

/// Allocates `bytes` on `stream` with the current allocator; NULL when it fails.
void* cuda_allocate(std::size_t bytes, void* stream);
/// Frees memory from cuda_allocate.
void cuda_free(void* data, void* stream);

}  // namespace embedkit::kernels
