#include "device_probe.hpp"

namespace embedkit::detail {

CudaProbe probe_cuda() { return CudaProbe{}; }

}  // namespace embedkit::detail
