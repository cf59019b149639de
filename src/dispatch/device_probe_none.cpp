#include "device_probe.hpp"

namespace embedkit::detail {

CudaDevice open_cuda_device() { return CudaDevice{}; }

bool is_cuda_device_pointer(const void*) { return false; }

}  // namespace embedkit::detail
