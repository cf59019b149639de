#include <embedkit/context.hpp>

#include "backend/backends.hpp"
#include "placement/context_impl.hpp"

namespace embedkit {

Context& Context::default_context() {
  // Never destroyed: tables may be freed from static destructors of the program using it.
  static Context* const context = [] {
    auto impl = std::make_unique<Impl>();
    detail::CudaDevice found = detail::open_cuda_device();
    impl->built_with_cuda = found.built_with_cuda;
    impl->device = std::move(found.backend);
    impl->no_device_reason = std::move(found.error);
    return new Context(std::move(impl));
  }();
  return *context;
}

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;

std::string Context::device_name() const { return impl_->device ? impl_->device->name() : std::string(); }

std::uint64_t Context::device_bytes_placed() const { return impl_->ledger(); }

}  // namespace embedkit
