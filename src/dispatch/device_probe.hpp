#pragma once
// What the machine offers for CUDA tables. One implementation per build: kernels/device_probe.cpp
// asks the CUDA runtime; src/dispatch/device_probe_none.cpp answers for a CPU-only build.

#include <string>

namespace embedkit::detail {

struct CudaProbe {
  bool built_with_cuda = false;  ///< The library holds a CUDA backend.
  int device_count = 0;          ///< Devices the runtime reports; 0 on any runtime or driver error.
  std::string error;             ///< The runtime's error name and text when the query failed.
  std::string device_name;       ///< Name of device 0, when there is one.

  bool usable() const { return built_with_cuda && device_count > 0; }
};

/// Asks the CUDA runtime, without creating a context, whether a device is usable.
CudaProbe probe_cuda();

}  // namespace embedkit::detail
