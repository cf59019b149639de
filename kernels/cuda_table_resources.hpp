#pragma once
// What the CUDA backend keeps for each table: a stream of its own, used when the caller has not
// set one (so two tables' work never waits on each other), and a workspace grown to the table's
// largest batch (src/backend/workspace.hpp) with the fold's layout for the last batch size. One
// operation at a time holds them.

#include "backend/workspace.hpp"
#include "fold_workspace.hpp"

#include <cuda_runtime_api.h>

#include <mutex>

namespace embedkit::kernels {

class CudaTableResources final : public detail::TableResources {
 public:
  /// Creates the table's stream on device `ordinal` (non-blocking: it never waits on the legacy
  /// default stream). Throws Error when the runtime refuses.
  explicit CudaTableResources(int ordinal);
  /// On the table's device (the caller's restored afterwards): waits for the stream's work, frees
  /// the workspace, then destroys the stream.
  ~CudaTableResources() override;
  CudaTableResources(const CudaTableResources&) = delete;
  CudaTableResources& operator=(const CudaTableResources&) = delete;

  cudaStream_t stream() const noexcept { return stream_; }
  std::mutex& mutex() noexcept { return mutex_; }
  detail::Workspace& workspace() noexcept { return workspace_; }
  /// The fold's last layout and the batch size it was planned for (-1: none yet).
  struct FoldPlan {
    std::int64_t count = -1;
    FoldWorkspace layout;
  };
  FoldPlan& fold_plan() noexcept { return fold_plan_; }

 private:
  int ordinal_;
  cudaStream_t stream_ = nullptr;
  std::mutex mutex_;
  detail::Workspace workspace_;
  FoldPlan fold_plan_;
};

}  // namespace embedkit::kernels
