#include "core/call_stream.hpp"

#include <embedkit/cuda_stream.hpp>

namespace embedkit {
namespace {

thread_local void* current_call_stream = nullptr;

}  // namespace

CudaStreamScope::CudaStreamScope(void* stream) noexcept : previous_(current_call_stream) {
  if (stream != nullptr) current_call_stream = stream;
}

CudaStreamScope::~CudaStreamScope() { current_call_stream = previous_; }

namespace detail {

void* call_stream() noexcept { return current_call_stream; }

}  // namespace detail
}  // namespace embedkit
