#pragma once
// The CUDA backend: device memory (cudaMallocAsync, or the caller's allocator), copies through
// bounded pinned rings (pinned_staging.hpp), memory information, and the table operations on the kernels of kernels/.
// Each table has a stream and a workspace of its own (cuda_table_resources.hpp); its operations
// run on the caller's stream instead when one is set.
// Those kernels have been checked on the CPU (host-launched bodies) and compiled, but not yet run
// on a GPU: capabilities().kernels_verified is true only when the backend is opened with its kernels enabled
// (EMBEDKIT_CUDA_TABLES=1 for the default context, or a test), so automatic placement keeps
// tables on the CPU until then.

#include "backend/backend.hpp"
#include "cuda_staging.hpp"
#include "fold_workspace.hpp"
#include "sparse_grad.hpp"

#include <cuda_runtime_api.h>

namespace embedkit::kernels {

class CudaBackend final : public detail::Backend, public detail::FusedStep {
 public:
  /// Opens device `ordinal` with a stream of its own for work outside any table's operations;
  /// `kernels_enabled` lets tables be placed on it.
  /// Throws Error when the runtime refuses.
  CudaBackend(int ordinal, bool kernels_enabled);
  ~CudaBackend() override;

  std::string name() const override { return "cuda:" + std::to_string(ordinal_); }
  DeviceKind kind() const override { return DeviceKind::cuda; }
  detail::MemoryInfo memory_info() const override;
  bool host_accessible() const override { return false; }
  detail::BackendCapabilities capabilities() const override {
    return {.kernels_verified = kernels_enabled_, .checks_ids = true};
  }
  detail::FusedStep* fused_step() override { return this; }
  detail::DeviceBuffer allocate(std::size_t bytes, std::string_view what) override;
  void deallocate(void* data, std::size_t bytes) noexcept override;
  /// Both copies go through a pinned ring of the backend's pool in chunks (EMBEDKIT_PINNED_CHUNK_BYTES,
  /// default 64 MiB), on the operation's stream after its queued work, and return when the bytes are
  /// in place; copies from different threads run concurrently, up to kMaxStagingRings at once.
  void copy_from_host(void* destination, const void* host, std::size_t bytes) override;
  void copy_to_host(void* host, const void* source, std::size_t bytes) override;
  bool owns(const void* data, std::size_t bytes) const override;
  void* bind_stream(void* stream) override;
  std::unique_ptr<detail::TableResources> open_table() override;

  void fill_initial(const detail::StoredRows& weights, std::int64_t rows, std::int64_t dim,
                    const detail::InitSampler& sampler, std::uint64_t seed) override;
  void fill(float* data, std::int64_t count, float value) override;
  void gather(const detail::TableView& table, const detail::DeviceIds& ids, float* out,
              detail::IdCheck* check) override;
  void pooled(const detail::TableView& table, const detail::DeviceIds& ids, const std::int64_t* offsets,
              std::int64_t bags, const float* sample_weights, PoolingMode mode, float* out,
              detail::IdCheck* check) override;
  detail::FoldedGrad fold_lookup_grad(const detail::TableView& table, const detail::DeviceIds& ids,
                                      const float* grad_out, detail::IdCheck* check) override;
  detail::FoldedGrad fold_pooled_grad(const detail::TableView& table, const detail::DeviceIds& ids,
                                      const std::int64_t* offsets, std::int64_t bags, const float* sample_weights,
                                      PoolingMode mode, const float* grad_bags, detail::IdCheck* check) override;
  std::int64_t mark_nonfinite(const detail::FoldedGrad& grad, std::int64_t dim, std::uint8_t* skip) override;
  /// Under plan.rule.judge_results the kernel judges each row's update across its lane group and
  /// counts the rows it leaves alone in a device word read back at the call's one synchronisation.
  std::int64_t apply(const detail::TableView& table, const detail::FoldedGrad& grad, const std::uint8_t* skip,
                     detail::StepPlan plan) override;
  /// The apply kernel's judgement alone (run_find_rejected): writes nothing of the table.
  std::int64_t first_rejected_update(const detail::TableView& table, const detail::FoldedGrad& grad,
                                     const std::uint8_t* skip, detail::StepPlan plan) override;
  bool fuses(std::int64_t dim) const override;
  std::int64_t fold_and_apply(const detail::TableView& table, const detail::DeviceIds& ids, const float* grad_rows,
                              detail::StepPlan plan, bool skip_nonfinite, detail::IdCheck* check) override;
  std::int64_t fold_pooled_and_apply(const detail::TableView& table, const detail::DeviceIds& ids,
                                     const std::int64_t* offsets, std::int64_t bags, const float* sample_weights,
                                     PoolingMode mode, const float* grad_bags, detail::StepPlan plan,
                                     bool skip_nonfinite, detail::IdCheck* check) override;
  /// The renorm kernel (kernels/renorm.cu) over the batch, its rows told apart by a bitmap of
  /// claimed rows in the table's workspace (input_dim bits).
  void renorm_rows(const detail::TableView& table, const detail::DeviceIds& ids, double max_norm,
                   double norm_type) override;
  void constrain_all(const detail::TableView& table, const Constraint& constraint) override;
  double penalty(const detail::StoredRows& weights, std::int64_t count, double l1, double l2) override;

 private:
  // The table's stream during an operation on it, the backend's own otherwise.
  cudaStream_t active_stream() const;
  // The sparse gradient of `rows` (one per id) by the CUB pipeline, in `workspace` laid out as `layout`.
  // The fold of `rows` (one per id) to its piece sums in `workspace` laid out as `layout`; `check`,
  // when given, receives the out-of-range ids the pipeline's flag caught.
  FoldPieces fold_pieces(const detail::TableView& table, const detail::DeviceIds& ids, const float* rows,
                         unsigned char* workspace, const FoldWorkspace& layout, detail::IdCheck* check);
  // The sparse gradient of `rows`: fold_pieces, then its rows written out.
  detail::FoldedGrad fold(const detail::TableView& table, const detail::DeviceIds& ids, const float* rows,
                          unsigned char* workspace, const FoldWorkspace& layout, detail::IdCheck* check);
  // The fused step from `rows` (one per id): the CUB pipeline to the piece sums in `workspace`,
  // then the kernel; its skip counter sits at workspace + layout.bytes.
  std::int64_t fused_step(const detail::TableView& table, const detail::DeviceIds& ids, const float* rows,
                          unsigned char* workspace, const FoldWorkspace& layout, detail::StepPlan plan,
                          bool skip_nonfinite, detail::IdCheck* check);

  int ordinal_;
  bool kernels_enabled_;
  cudaStream_t stream_ = nullptr;
  CudaStagingPool staging_;
};

}  // namespace embedkit::kernels
