#pragma once
/// @file cuda_stream.hpp
/// @brief The CUDA stream of the table calls one thread makes: per call, so readers never
/// serialise on a table-wide setting (EmbeddingTable::set_cuda_stream is a writer call).

#include <embedkit/export.h>

namespace embedkit {

/// @brief Puts the CUDA work of every table call this thread makes while the scope lives on
/// `stream` (a cudaStream_t the caller owns, such as a framework's current stream): the call's
/// kernels and copies run on it, after the caller's work already queued there, and the call
/// synchronises only that stream. NULL: as outside any scope. Scopes nest; the innermost wins.
///
/// Which stream a call uses: the innermost scope's, else the table's (set_cuda_stream), else,
/// when the call reads or writes tensors in the table's device memory, CUDA's legacy default
/// stream (what DLPack prescribes when a consumer names none), else the table's own stream.
/// Tables on the CPU run no CUDA work; the stream then orders only the copies of tensors that
/// are staged from a device to the host.
class EMBEDKIT_API CudaStreamScope {
 public:
  explicit CudaStreamScope(void* stream) noexcept;
  ~CudaStreamScope();
  CudaStreamScope(const CudaStreamScope&) = delete;
  CudaStreamScope& operator=(const CudaStreamScope&) = delete;

 private:
  void* previous_;
};

}  // namespace embedkit
