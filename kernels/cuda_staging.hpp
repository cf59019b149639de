#pragma once
// The CUDA runtime behind StagingPool (pinned_staging.hpp): page-locked chunks from
// cudaMallocHost, events without timing, copies queued with cudaMemcpyAsync. Called on the
// backend's device (its events belong to it); failures throw Error and leave no error pending.

#include "cuda_try.hpp"
#include "pinned_staging.hpp"

#include <cuda_runtime_api.h>

#include <cstddef>

namespace embedkit::kernels {

struct CudaStagingOps {
  using Stream = cudaStream_t;
  using Event = cudaEvent_t;

  void* allocate_host(std::size_t bytes) const {
    void* data = nullptr;
    EMBEDKIT_CUDA_TRY(cudaMallocHost(&data, bytes));
    return data;
  }
  void free_host(void* data) const noexcept { cleared(cudaFreeHost(data)); }
  cudaEvent_t create_event() const {
    cudaEvent_t event = nullptr;
    EMBEDKIT_CUDA_TRY(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    return event;
  }
  void destroy_event(cudaEvent_t event) const noexcept { cleared(cudaEventDestroy(event)); }
  void copy_to_device(void* device, const void* pinned, std::size_t bytes, cudaStream_t stream) const {
    EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(device, pinned, bytes, cudaMemcpyHostToDevice, stream));
  }
  void copy_to_host(void* pinned, const void* device, std::size_t bytes, cudaStream_t stream) const {
    EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(pinned, device, bytes, cudaMemcpyDeviceToHost, stream));
  }
  void record(cudaEvent_t event, cudaStream_t stream) const { EMBEDKIT_CUDA_TRY(cudaEventRecord(event, stream)); }
  void wait(cudaEvent_t event) const { EMBEDKIT_CUDA_TRY(cudaEventSynchronize(event)); }
  bool synchronize(cudaStream_t stream) const noexcept { return cleared(cudaStreamSynchronize(stream)); }

 private:
  // A failure in a noexcept path is returned, not left pending for the next launch check.
  static bool cleared(cudaError_t status) noexcept {
    if (status == cudaSuccess) return true;
    (void)cudaGetLastError();
    return false;
  }
};

using CudaStagingPool = StagingPool<CudaStagingOps>;

}  // namespace embedkit::kernels
