#pragma once
// What the machine offers for CUDA tables. One implementation per build: kernels/cuda_device.cpp
// asks the CUDA runtime; src/dispatch/device_probe_none.cpp answers for a CPU-only build.

#include "../backend/backend.hpp"

#include <cstddef>
#include <memory>
#include <string>

namespace embedkit::detail {

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
