#include <embedkit/status.hpp>

#include "backend/backends.hpp"

namespace embedkit::detail {

CudaDevice open_cuda_device() { return CudaDevice{}; }

void set_device_allocator(void* (*)(std::size_t, void*, void*), void (*)(void*, void*, void*), void*) {
  throw Error(Status::unsupported, "this embedkit was built without CUDA: there is no CUDA allocator to set");
}

}  // namespace embedkit::detail
