#pragma once
// A Context whose device is a SimDeviceBackend, for the dispatch tests.

#include <embedkit/context.hpp>

#include "sim/sim_device_backend.hpp"
#include "src/placement/context_impl.hpp"

#include <cstdint>
#include <memory>

namespace embedkit::testing {

inline std::unique_ptr<Context> sim_context(std::uint64_t capacity) {
  auto impl = std::make_unique<Context::Impl>();
  impl->built_with_cuda = true;
  impl->device = std::make_unique<detail::SimDeviceBackend>(capacity);
  return std::make_unique<Context>(std::move(impl));
}

inline detail::SimDeviceBackend& sim_of(Context& context) {
  return static_cast<detail::SimDeviceBackend&>(*context.impl().device);
}

}  // namespace embedkit::testing
