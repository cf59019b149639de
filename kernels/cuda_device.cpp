// Device discovery through the CUDA runtime; compiled only when the library is built with CUDA.
#include <embedkit/status.hpp>

#include "backend/backends.hpp"
#include "cuda_allocator.hpp"
#include "cuda_backend.hpp"
#include "verified_architectures.hpp"

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <string>

namespace embedkit::detail {

CudaDevice open_cuda_device() {
  CudaDevice found;
  found.built_with_cuda = true;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // cudaErrorNoDevice, cudaErrorInsufficientDriver and the like all mean "no device here".
    found.error = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    (void)cudaGetLastError();
    return found;
  }
  if (count == 0) {
    found.error = "the CUDA runtime reports no device";
    return found;
  }
  try {
    // Tables go to a device whose architecture the GPU suite has passed on, or where the user opts in.
    const char* opt_in = std::getenv("EMBEDKIT_CUDA_TABLES");
    int major = 0, minor = 0;
    (void)cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
    (void)cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
    (void)cudaGetLastError();
    const bool verified = kernels::architecture_verified(major, minor);
    found.backend =
        std::make_unique<kernels::CudaBackend>(0, verified || (opt_in != nullptr && std::string(opt_in) == "1"));
  } catch (const Error& e) {
    found.error = e.what();
  }
  return found;
}

void set_device_allocator(void* (*allocate)(std::size_t, void*, void*), void (*release)(void*, void*, void*),
                          void* context) {
  kernels::set_cuda_allocator(allocate, release, context);
}

}  // namespace embedkit::detail
