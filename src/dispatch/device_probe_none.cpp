#include "device_probe.hpp"

namespace embedkit::detail {

CudaDevice open_cuda_device() { return CudaDevice{}; }

}  // namespace embedkit::detail
