#pragma once
// EMBEDKIT_CUDA_TRY(call): runs a CUDA runtime call and throws embedkit::Error naming the call, the
// runtime's error and the file and line when it fails (out_of_memory for allocation failures).

#include <embedkit/status.hpp>

#include <cuda_runtime_api.h>

#include <string>

namespace embedkit::kernels {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  (void)cudaGetLastError();  // clear a non-sticky error so the next call does not report it again
  const Status kind = status == cudaErrorMemoryAllocation ? Status::out_of_memory : Status::internal;
  throw Error(kind, std::string(call) + " failed: " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status) +
                        " (" + file + ":" + std::to_string(line) + ")");
}

}  // namespace embedkit::kernels

#define EMBEDKIT_CUDA_TRY(call)                                                               \
  do {                                                                                        \
    const cudaError_t embedkit_cuda_status = (call);                                          \
    if (embedkit_cuda_status != cudaSuccess) {                                                \
      ::embedkit::kernels::throw_cuda_error(embedkit_cuda_status, #call, __FILE__, __LINE__); \
    }                                                                                         \
  } while (false)
