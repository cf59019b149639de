#pragma once
// What the CUDA backend keeps for each table: a stream of its own, used when the caller has not
// set one (so two tables' work never waits on each other), and a workspace grown to the table's
// largest batch (src/backend/workspace.hpp). One operation at a time holds them.

#include "../src/backend/workspace.hpp"

#include <cuda_runtime_api.h>

#include <mutex>

namespace embedkit::kernels {

class CudaTableResources final : public detail::TableResources {
 public:
  /// Creates the table's stream on device `ordinal` (non-blocking: it never waits on the legacy
  /// default stream). Throws Error when the runtime refuses.
  explicit CudaTableResources(int ordinal);
  /// Waits for the stream's work, then destroys it.
  ~CudaTableResources() override;
  CudaTableResources(const CudaTableResources&) = delete;
  CudaTableResources& operator=(const CudaTableResources&) = delete;

  cudaStream_t stream() const noexcept { return stream_; }
  std::mutex& mutex() noexcept { return mutex_; }
  detail::Workspace& workspace() noexcept { return workspace_; }

 private:
  int ordinal_;
  cudaStream_t stream_ = nullptr;
  std::mutex mutex_;
  detail::Workspace workspace_;
};

}  // namespace embedkit::kernels
