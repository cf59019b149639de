#include "placement.hpp"

#include <embedkit/status.hpp>

#include <fmt/format.h>

namespace embedkit {

const char* to_string(PlacementReason reason) noexcept {
  switch (reason) {
    case PlacementReason::cpu_requested: return "cpu_requested";
    case PlacementReason::cuda_not_built: return "cuda_not_built";
    case PlacementReason::no_cuda_device: return "no_cuda_device";
    case PlacementReason::cuda_backend_not_implemented: return "cuda_backend_not_implemented";
  }
  return "unknown";
}

namespace detail {
namespace {

PlacementDecision on_cpu(PlacementReason code, std::string reason, const ByteBreakdown& bytes) {
  PlacementDecision decision;
  decision.device = DeviceKind::cpu;
  decision.reason_code = code;
  decision.reason = std::move(reason);
  decision.bytes = bytes;
  return decision;
}

}  // namespace

PlacementDecision decide_placement(PlacementPolicy policy, const ByteBreakdown& bytes,
                                   const CudaProbe& probe) {
  if (policy == PlacementPolicy::cpu) {
    return on_cpu(PlacementReason::cpu_requested, "placement 'cpu' was requested", bytes);
  }
  std::string reason;
  PlacementReason code;
  if (!probe.built_with_cuda) {
    code = PlacementReason::cuda_not_built;
    reason = "this embedkit was built without CUDA";
  } else if (!probe.usable()) {
    code = PlacementReason::no_cuda_device;
    reason = probe.error.empty() ? std::string("no CUDA device is present")
                                 : fmt::format("no usable CUDA device ({})", probe.error);
  } else {
    code = PlacementReason::cuda_backend_not_implemented;
    reason = fmt::format("CUDA device 0 ({}) is usable, but this version of embedkit keeps tables "
                         "on the CPU: its CUDA table backend is not implemented yet",
                         probe.device_name);
  }
  if (policy == PlacementPolicy::cuda) {
    const char* remedy = code == PlacementReason::cuda_not_built
                             ? "rebuild with -DEMBEDKIT_CUDA=ON, or use placement 'auto' or 'cpu'"
                             : "use placement 'auto' or 'cpu'";
    throw Error(Status::unsupported,
                fmt::format("placement 'cuda' was requested, but {}; {}", reason, remedy));
  }
  return on_cpu(code, std::move(reason), bytes);
}

}  // namespace detail
}  // namespace embedkit
