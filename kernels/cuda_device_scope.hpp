#pragma once
// The CUDA runtime behind DeviceScope (device_scope.hpp): CudaDeviceScope selects a device and
// restores the caller's, noexcept, for destructors and deallocation; CheckedDeviceScope throws
// Error when the device cannot be selected, for operations.

#include "cuda_try.hpp"
#include "device_scope.hpp"

#include <cuda_runtime_api.h>

namespace embedkit::kernels {

struct CudaDevices {
  using Stream = cudaStream_t;
  int current(int* ordinal) const noexcept { return cleared(cudaGetDevice(ordinal)); }
  int select(int ordinal) const noexcept { return cleared(cudaSetDevice(ordinal)); }
  int synchronize(cudaStream_t stream) const noexcept { return cleared(cudaStreamSynchronize(stream)); }

 private:
  // A failure is returned, not left pending for the next launch check to misreport.
  static int cleared(cudaError_t status) noexcept {
    if (status != cudaSuccess) (void)cudaGetLastError();
    return static_cast<int>(status);
  }
};

using CudaDeviceScope = DeviceScope<CudaDevices>;

/// A CudaDeviceScope that throws Error naming the runtime's error when `ordinal` cannot be selected.
class CheckedDeviceScope {
 public:
  explicit CheckedDeviceScope(int ordinal, cudaStream_t unwind_stream = nullptr)
      : scope_(CudaDevices{}, ordinal, unwind_stream) {
    if (scope_.error() != 0) {
      throw_cuda_error(static_cast<cudaError_t>(scope_.error()), "cudaSetDevice", __FILE__, __LINE__);
    }
  }

 private:
  CudaDeviceScope scope_;
};

}  // namespace embedkit::kernels
