// Device discovery through the CUDA runtime; compiled only when the library is built with CUDA.
#include "../src/dispatch/device_probe.hpp"

#include <cuda_runtime_api.h>

#include <string>

namespace embedkit::detail {

CudaProbe probe_cuda() {
  CudaProbe probe;
  probe.built_with_cuda = true;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // cudaErrorNoDevice, cudaErrorInsufficientDriver and the like all mean "no device here".
    probe.error = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    (void)cudaGetLastError();  // clear it so later runtime calls do not report it again
    return probe;
  }
  probe.device_count = count;
  cudaDeviceProp properties{};
  if (count > 0 && cudaGetDeviceProperties(&properties, 0) == cudaSuccess) {
    probe.device_name = properties.name;
  }
  return probe;
}

}  // namespace embedkit::detail
