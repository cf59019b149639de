#pragma once
// The CUDA stream the calling thread's table calls run on (CudaStreamScope), and the stream a call
// falls back to when its tensors are in device memory and no one named a stream.

namespace embedkit::detail {

/// The innermost CudaStreamScope's stream on this thread, or NULL outside any scope.
void* call_stream() noexcept;

/// CUDA's legacy default stream as a cudaStream_t (cudaStreamLegacy, a documented constant): the
/// stream DLPack prescribes when a consumer names none, ordered after every blocking stream.
inline void* legacy_default_stream() noexcept { return reinterpret_cast<void*>(0x1); }

/// The stream work on a caller's device memory goes on: the one the call names, else the legacy
/// default stream, which DLPack prescribes when a consumer names none.
inline void* device_tensor_stream(void* named) noexcept { return named != nullptr ? named : legacy_default_stream(); }

}  // namespace embedkit::detail
