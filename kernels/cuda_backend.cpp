#include "cuda_backend.hpp"

#include <embedkit/status.hpp>

#include "cuda_try.hpp"

#include <cstring>

namespace embedkit::kernels {
namespace {

[[noreturn]] void not_yet(const char* operation) {
  throw Error(Status::unsupported, std::string("the CUDA backend's ") + operation +
                                       " kernel is not implemented yet; place the table on the CPU");
}

// Device calls run on the backend's device whatever the caller's current device is.
class DeviceScope {
 public:
  explicit DeviceScope(int ordinal) {
    EMBEDKIT_CUDA_TRY(cudaGetDevice(&previous_));
    EMBEDKIT_CUDA_TRY(cudaSetDevice(ordinal));
  }
  ~DeviceScope() { (void)cudaSetDevice(previous_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace

CudaBackend::CudaBackend(int ordinal) : ordinal_(ordinal) {
  DeviceScope scope(ordinal_);
  EMBEDKIT_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaBackend::~CudaBackend() {
  if (staging_ != nullptr) (void)cudaFreeHost(staging_);
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

detail::MemoryInfo CudaBackend::memory_info() const {
  DeviceScope scope(ordinal_);
  std::size_t free_bytes = 0, total_bytes = 0;
  EMBEDKIT_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
  return {free_bytes, total_bytes};
}

detail::DeviceBuffer CudaBackend::allocate(std::size_t bytes, std::string_view what) {
  DeviceScope scope(ordinal_);
  void* data = nullptr;
  const cudaError_t status = cudaMallocAsync(&data, bytes == 0 ? 1 : bytes, stream_);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    throw Error(status == cudaErrorMemoryAllocation ? Status::out_of_memory : Status::internal,
                std::string(what) + ": cudaMallocAsync of " + std::to_string(bytes) + " bytes on " + name() +
                    " failed: " + cudaGetErrorString(status));
  }
  return detail::DeviceBuffer(this, data, bytes);
}

void CudaBackend::deallocate(void* data, std::size_t) noexcept {
  if (cudaSetDevice(ordinal_) == cudaSuccess) (void)cudaFreeAsync(data, stream_);
}

void* CudaBackend::pinned(std::size_t bytes) {
  if (bytes > staging_bytes_) {
    if (staging_ != nullptr) EMBEDKIT_CUDA_TRY(cudaFreeHost(staging_));
    staging_ = nullptr;
    staging_bytes_ = 0;
    EMBEDKIT_CUDA_TRY(cudaMallocHost(&staging_, bytes));
    staging_bytes_ = bytes;
  }
  return staging_;
}

void CudaBackend::copy_from_host(void* destination, const void* host, std::size_t bytes) {
  if (bytes == 0) return;
  DeviceScope scope(ordinal_);
  std::lock_guard lock(staging_mutex_);
  void* staging = pinned(bytes);  // pageable memory cannot be copied asynchronously
  std::memcpy(staging, host, bytes);
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(destination, staging, bytes, cudaMemcpyHostToDevice, stream_));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_to_host(void* host, const void* source, std::size_t bytes) {
  if (bytes == 0) return;
  DeviceScope scope(ordinal_);
  std::lock_guard lock(staging_mutex_);
  void* staging = pinned(bytes);
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(staging, source, bytes, cudaMemcpyDeviceToHost, stream_));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(stream_));
  std::memcpy(host, staging, bytes);
}

bool CudaBackend::owns(const void* data, std::size_t) const {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, data) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeDevice && attributes.device == ordinal_;
}

void CudaBackend::fill_initial(float*, std::int64_t, std::int64_t, const detail::InitSampler&, std::uint64_t) {
  not_yet("initializer");
}
void CudaBackend::fill(float*, std::int64_t, float) { not_yet("fill"); }
void CudaBackend::gather(const detail::TableView&, const detail::DeviceIds&, float*) { not_yet("gather"); }
void CudaBackend::pooled(const detail::TableView&, const detail::DeviceIds&, const std::int64_t*, std::int64_t,
                         const float*, PoolingMode, float*) {
  not_yet("pooled lookup");
}
detail::FoldedGrad CudaBackend::fold_lookup_grad(const detail::TableView&, const detail::DeviceIds&, const float*) {
  not_yet("sparse gradient");
}
detail::FoldedGrad CudaBackend::fold_pooled_grad(const detail::TableView&, const detail::DeviceIds&,
                                                 const std::int64_t*, std::int64_t, const float*, PoolingMode,
                                                 const float*) {
  not_yet("pooled sparse gradient");
}
std::int64_t CudaBackend::mark_nonfinite(const detail::FoldedGrad&, std::int64_t, std::uint8_t*) {
  not_yet("non-finite check");
}
void CudaBackend::apply(const detail::TableView&, const detail::FoldedGrad&, const std::uint8_t*,
                        const detail::StepPlan&) {
  not_yet("optimizer");
}
void CudaBackend::constrain_all(const detail::TableView&, const Constraint&) { not_yet("constraint"); }
double CudaBackend::penalty(const float*, std::int64_t, double, double) { not_yet("penalty"); }

}  // namespace embedkit::kernels
