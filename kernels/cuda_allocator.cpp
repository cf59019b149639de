#include "cuda_allocator.hpp"

#include <embedkit/status.hpp>

#include <cuda_runtime_api.h>

#include <atomic>
#include <mutex>
#include <string>

namespace embedkit::kernels {
namespace {

struct Registry {
  std::mutex mutex;
  CudaAllocate allocate = nullptr;
  CudaFree release = nullptr;
  void* context = nullptr;
  std::atomic<long long> live{0};
};

Registry& registry() {
  static Registry instance;
  return instance;
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

void* cuda_allocate(std::size_t bytes, void* stream) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  void* data = nullptr;
  if (r.allocate != nullptr) {
    data = r.allocate(bytes, stream, r.context);
  } else if (cudaMallocAsync(&data, bytes, static_cast<cudaStream_t>(stream)) != cudaSuccess) {
    (void)cudaGetLastError();
    data = nullptr;
  }
  if (data != nullptr) ++r.live;
  return data;
}

void cuda_free(void* data, void* stream) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.release != nullptr) {
    r.release(data, stream, r.context);
  } else {
    (void)cudaFreeAsync(data, static_cast<cudaStream_t>(stream));
  }
  --r.live;
}

}  // namespace embedkit::kernels
