#pragma once
// Where src/ gets its backends: the one door from the table layer to cpu/ and kernels/ (the
// simulated device is made by the tests that use it). The CPU's parts are in cpu/host_ops.cpp;
// the CUDA ones in kernels/cuda_device.cpp, or backend/cuda_absent.cpp in a CPU-only build.

#include "backend/backend.hpp"
#include "backend/host_ops.hpp"

#include <cstddef>
#include <memory>
#include <string>

namespace embedkit::detail {

/// The process's one CPU backend: host memory and the OpenMP loops.
Backend& cpu_backend();
/// The operations on host memory every table needs (the CPU backend's).
HostOps& host_ops();

/// The result of looking for CUDA device 0.
struct CudaDevice {
  bool built_with_cuda = false;
  std::unique_ptr<Backend> backend;  // null when no device is usable
  std::string error;                 // the runtime's error name and text when the query failed
};

/// Looks for a usable CUDA device (a driver error such as cudaErrorInsufficientDriver means none).
CudaDevice open_cuda_device();

/// ek_set_cuda_allocator: installs a framework's CUDA allocator (both NULL: the default). Throws
/// Error(unsupported) in a CPU-only build, Error(invalid_argument) as kernels/cuda_allocator.hpp says.
void set_device_allocator(void* (*allocate)(std::size_t, void*, void*), void (*release)(void*, void*, void*),
                          void* context);

}  // namespace embedkit::detail
