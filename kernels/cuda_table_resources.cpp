#include "cuda_table_resources.hpp"

#include "cuda_device_scope.hpp"
#include "cuda_try.hpp"

namespace embedkit::kernels {

CudaTableResources::CudaTableResources(int ordinal) : ordinal_(ordinal) {
  const CheckedDeviceScope scope(ordinal_);
  EMBEDKIT_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaTableResources::~CudaTableResources() {
  // On the table's device, and the caller's device again afterwards.
  const CudaDeviceScope scope(CudaDevices{}, ordinal_);
  if (scope.error() != 0) return;
  (void)cudaStreamSynchronize(stream_);  // nothing queued reads the workspace once it goes back
  workspace_ = detail::Workspace();
  (void)cudaStreamDestroy(stream_);
  (void)cudaGetLastError();
}

}  // namespace embedkit::kernels
