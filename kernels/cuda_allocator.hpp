#pragma once
// The allocator embedkit's CUDA memory comes from: by default each device's stream-ordered pool
// (cudaMallocAsync / cudaFreeAsync on the caller's stream), or cudaMalloc / cudaFree on a device
// without memory pools (allocation_policy.hpp); or a framework's caching allocator set through
// ek_set_cuda_allocator. Process-wide; it can change only while embedkit holds no device memory,
// so every buffer is freed by the allocator that made it.

#include <cstddef>

namespace embedkit::kernels {

using CudaAllocate = void* (*)(std::size_t bytes, void* stream, void* context);
using CudaFree = void (*)(void* data, void* stream, void* context);

/// Installs `allocate` / `release` (both NULL: back to the default). Throws
/// Error(invalid_argument) when only one is given or while device buffers are live.
void set_cuda_allocator(CudaAllocate allocate, CudaFree release, void* context);

/// Allocates `bytes` on `device` (the thread's current device), ordered on `stream`, with the
/// current allocator; NULL when it is out of memory. Throws Error(internal) for another failure
/// of the runtime. Leaves no CUDA error pending.
void* cuda_allocate(int device, std::size_t bytes, void* stream);
/// Frees memory from cuda_allocate on `device` (the current device), ordered on `stream`: work
/// queued on `stream` before the call may still read it; work on other streams must be complete.
void cuda_free(int device, void* data, void* stream);

/// Bytes `device`'s default pool holds mapped but unused (0 under a caller's allocator or the
/// plain route): free memory for embedkit's next allocation, which gives them back if it must.
std::size_t idle_pool_bytes(int device);

}  // namespace embedkit::kernels
