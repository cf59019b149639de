#pragma once
// C++17, host only, no CUDA header: the decisions of the CUDA allocator (cuda_allocator.cpp) as
// pure functions, tested without a GPU (tests/allocation_policy_test.cpp).
//
// Without a caller's allocator a device's memory comes from its default stream-ordered pool
// (cudaMallocAsync / cudaFreeAsync) when the device supports memory pools, else from cudaMalloc /
// cudaFree (cudaFree waits for the device, so the plain route is safe without stream order). The
// route is a device's for as long as it holds buffers, so each buffer is freed the way it was
// allocated: it is chosen at the device's first allocation and changes only from pool to plain,
// when cudaMallocAsync answers "not supported" (some virtualised GPUs) while the pool holds none.

#include <cstdint>

namespace embedkit::kernels {

/// Where a device's memory comes from.
enum class AllocationRoute {
  unknown,  ///< no allocation yet: probe the device (cudaDevAttrMemoryPoolsSupported)
  pool,     ///< cudaMallocAsync / cudaFreeAsync on the default pool
  plain,    ///< cudaMalloc / cudaFree
};

/// The route of a device whose pool support was just probed.
constexpr AllocationRoute probed_route(bool pools_supported) {
  return pools_supported ? AllocationRoute::pool : AllocationRoute::plain;
}

/// How cudaMallocAsync failed.
enum class PoolFailure { out_of_memory, not_supported, other };

/// What the allocator does next.
enum class PoolFailureAction {
  trim_and_retry,  ///< give the pool's idle memory back (cudaMemPoolTrimTo) and try once more
  use_plain,       ///< switch the device to cudaMalloc and allocate there
  out_of_memory,   ///< report out of memory (the caller may retry in chunks)
  error,           ///< report the runtime's error as it is
};

/// The action after cudaMallocAsync failed with `failure`, the pool already trimmed for this
/// allocation or not, while `pool_buffers` of the device's buffers come from its pool.
constexpr PoolFailureAction after_pool_failure(PoolFailure failure, bool trimmed, std::int64_t pool_buffers) {
  switch (failure) {
    case PoolFailure::out_of_memory:
      return trimmed ? PoolFailureAction::out_of_memory : PoolFailureAction::trim_and_retry;
    case PoolFailure::not_supported:
      // Buffers of the pool must go back through cudaFreeAsync: the route cannot change under them.
      return pool_buffers == 0 ? PoolFailureAction::use_plain : PoolFailureAction::error;
    case PoolFailure::other: break;
  }
  return PoolFailureAction::error;
}

/// The default pool's release threshold: bytes the pool keeps mapped across synchronisations, so a
/// call's temporaries are not unmapped at its synchronisation and mapped again by the next call.
/// All of them, as PyTorch's cudaMallocAsync backend sets it; idle pool memory is counted as free
/// by memory_info and given back (trimmed) before an allocation reports out of memory.
constexpr std::uint64_t kPoolReleaseThreshold = ~std::uint64_t{0};

}  // namespace embedkit::kernels
