#include <embedkit/context.hpp>

#include "backend/backends.hpp"
#include "placement/context_impl.hpp"

#include <string>
#include <string_view>

namespace embedkit {
namespace {

// The runtime's answer in words first, its error code after: without a GPU the CUDA runtime says
// "cudaErrorInsufficientDriver: CUDA driver version is insufficient", which reads as "update the
// driver" on a machine that has no driver or GPU at all.
std::string no_device_in_words(const std::string& runtime_error) {
  const auto says = [&](std::string_view name) { return runtime_error.starts_with(name); };
  if (says("cudaErrorInsufficientDriver")) {
    return "no NVIDIA driver is loaded, or it is older than the CUDA runtime embedkit was built with; " + runtime_error;
  }
  if (says("cudaErrorNoDevice")) return "the NVIDIA driver reports no GPU; " + runtime_error;
  return runtime_error;
}

}  // namespace

Context& Context::default_context() {
  // Never destroyed: tables may be freed from static destructors of the program using it.
  static Context* const context = [] {
    auto impl = std::make_unique<Impl>();
    detail::CudaDevice found = detail::open_cuda_device();
    impl->built_with_cuda = found.built_with_cuda;
    impl->device = std::move(found.backend);
    impl->no_device_reason = no_device_in_words(found.error);
    return new Context(std::move(impl));
  }();
  return *context;
}

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;

std::string Context::device_name() const { return impl_->device ? impl_->device->name() : std::string(); }

std::uint64_t Context::device_bytes_placed() const { return impl_->ledger(); }

}  // namespace embedkit
