#include "cuda_table_resources.hpp"

#include "cuda_try.hpp"

namespace embedkit::kernels {

CudaTableResources::CudaTableResources(int ordinal) : ordinal_(ordinal) {
  int previous = 0;
  EMBEDKIT_CUDA_TRY(cudaGetDevice(&previous));
  EMBEDKIT_CUDA_TRY(cudaSetDevice(ordinal_));
  const cudaError_t created = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  (void)cudaSetDevice(previous);
  EMBEDKIT_CUDA_TRY(created);
}

CudaTableResources::~CudaTableResources() {
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(ordinal_) != cudaSuccess) return;
  workspace_ = detail::Workspace();  // its buffer goes back while the device is current
  (void)cudaStreamSynchronize(stream_);
  (void)cudaStreamDestroy(stream_);
  (void)cudaSetDevice(previous);
}

}  // namespace embedkit::kernels
