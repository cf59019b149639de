#include "cuda_allocator.hpp"

#include <embedkit/status.hpp>

#include "allocation_policy.hpp"

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace embedkit::kernels {
namespace {

// A device's route (allocation_policy.hpp) and how many of its live buffers came from its pool.
struct DeviceMemory {
  AllocationRoute route = AllocationRoute::unknown;
  std::int64_t pool_buffers = 0;
};

struct Registry {
  std::mutex mutex;
  CudaAllocate allocate = nullptr;
  CudaFree release = nullptr;
  void* context = nullptr;
  std::atomic<long long> live{0};
  std::map<int, DeviceMemory> devices;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

// Clears the error a failed runtime call left pending, so the next launch check does not report it.
cudaError_t cleared(cudaError_t status) {
  if (status != cudaSuccess) (void)cudaGetLastError();
  return status;
}

[[noreturn]] void throw_allocation_error(cudaError_t status, const char* call, int device, std::size_t bytes) {
  throw Error(Status::internal, std::string(call) + " of " + std::to_string(bytes) +
                                    " bytes on cuda:" + std::to_string(device) +
                                    " failed: " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

// Probes whether `device` has memory pools and, when it does, lets its default pool keep its
// memory mapped across synchronisations.
AllocationRoute probe(int device) {
  int supported = 0;
  if (cleared(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device)) != cudaSuccess) {
    supported = 0;
  }
  const AllocationRoute route = probed_route(supported != 0);
  cudaMemPool_t pool = nullptr;
  if (route == AllocationRoute::pool && cleared(cudaDeviceGetDefaultMemPool(&pool, device)) == cudaSuccess) {
    std::uint64_t threshold = kPoolReleaseThreshold;
    (void)cleared(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));  // an optimisation
  }
  return route;
}

PoolFailure classify(cudaError_t status) {
  if (status == cudaErrorMemoryAllocation) return PoolFailure::out_of_memory;
  if (status == cudaErrorNotSupported) return PoolFailure::not_supported;
  return PoolFailure::other;
}

// `bytes` from `device`'s default route; NULL when it is out of memory.
void* allocate_on_device(DeviceMemory& memory, int device, std::size_t bytes, cudaStream_t stream) {
  if (memory.route == AllocationRoute::unknown) memory.route = probe(device);
  void* data = nullptr;
  for (bool trimmed = false; memory.route == AllocationRoute::pool;) {
    const cudaError_t status = cleared(cudaMallocAsync(&data, bytes, stream));
    if (status == cudaSuccess) {
      ++memory.pool_buffers;
      return data;
    }
    switch (after_pool_failure(classify(status), trimmed, memory.pool_buffers)) {
      case PoolFailureAction::trim_and_retry: {
        cudaMemPool_t pool = nullptr;
        if (cleared(cudaDeviceGetDefaultMemPool(&pool, device)) != cudaSuccess) return nullptr;
        (void)cleared(cudaMemPoolTrimTo(pool, 0));
        trimmed = true;
        break;
      }
      case PoolFailureAction::use_plain: memory.route = AllocationRoute::plain; break;
      case PoolFailureAction::out_of_memory: return nullptr;
      case PoolFailureAction::error: throw_allocation_error(status, "cudaMallocAsync", device, bytes);
    }
  }
  const cudaError_t status = cleared(cudaMalloc(&data, bytes));
  if (status == cudaErrorMemoryAllocation) return nullptr;
  if (status != cudaSuccess) throw_allocation_error(status, "cudaMalloc", device, bytes);
  return data;
}

}  // namespace

void set_cuda_allocator(CudaAllocate allocate, CudaFree release, void* context) {
  if ((allocate == nullptr) != (release == nullptr)) {
    throw Error(Status::invalid_argument,
                "a CUDA allocator needs both its allocate and its free function (or neither)");
  }
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.live.load() != 0) {
    throw Error(Status::invalid_argument, "the CUDA allocator cannot change while embedkit holds " +
                                              std::to_string(r.live.load()) +
                                              " device buffers; set it before creating tables on a CUDA device");
  }
  r.allocate = allocate;
  r.release = release;
  r.context = context;
}

void* cuda_allocate(int device, std::size_t bytes, void* stream) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  void* data = nullptr;
  if (r.allocate != nullptr) {
    data = r.allocate(bytes, stream, r.context);
    // A caller's allocator that failed may have left its CUDA error pending (cudaMalloc's, say):
    // cleared, or the next launch check would throw for a launch that succeeded.
    if (data == nullptr) (void)cudaGetLastError();
  } else {
    data = allocate_on_device(r.devices[device], device, bytes, static_cast<cudaStream_t>(stream));
  }
  if (data != nullptr) ++r.live;
  return data;
}

void cuda_free(int device, void* data, void* stream) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.release != nullptr) {
    r.release(data, stream, r.context);
  } else {
    DeviceMemory& memory = r.devices[device];
    if (memory.route == AllocationRoute::pool) {
      (void)cleared(cudaFreeAsync(data, static_cast<cudaStream_t>(stream)));
      --memory.pool_buffers;
    } else {
      (void)cleared(cudaFree(data));  // waits for the device: nothing queued can still read `data`
    }
  }
  --r.live;
}

std::size_t idle_pool_bytes(int device) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto found = r.devices.find(device);
  if (r.allocate != nullptr || found == r.devices.end() || found->second.route != AllocationRoute::pool) return 0;
  cudaMemPool_t pool = nullptr;
  std::uint64_t reserved = 0, used = 0;
  if (cleared(cudaDeviceGetDefaultMemPool(&pool, device)) != cudaSuccess ||
      cleared(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved)) != cudaSuccess ||
      cleared(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used)) != cudaSuccess) {
    return 0;
  }
  return reserved > used ? static_cast<std::size_t>(reserved - used) : 0;
}

}  // namespace embedkit::kernels
