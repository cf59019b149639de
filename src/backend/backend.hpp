#pragma once
// The Backend interface: where a table's memory lives and what runs its operations. The table talks
// only to this; CpuBackend (host memory, OpenMP kernels), SimDeviceBackend (a simulated device for
// tests) and CudaBackend (kernels/) implement it. Every pointer an operation takes is memory of that
// backend; the table stages host inputs across before calling.

#include <embedkit/config.hpp>
#include <embedkit/detail/init_sampler.hpp>
#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/detail/padding.hpp>
#include <embedkit/detail/row_step.hpp>
#include <embedkit/placement.hpp>
#include <embedkit/pooling.hpp>
#include <embedkit/status.hpp>
#include <embedkit/tensor.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace embedkit::detail {

class Backend;

/// Free and total bytes of a backend's memory.
struct MemoryInfo {
  std::uint64_t free_bytes = 0;
  std::uint64_t total_bytes = 0;
};

/// Memory allocated by a backend and returned to it on destruction. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* owner, void* data, std::size_t bytes) : owner_(owner), data_(data), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    DeviceBuffer(std::move(other)).swap(*this);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  template <class T>
  T* as() const noexcept {
    return static_cast<T*>(data_);
  }
  std::size_t bytes() const noexcept { return bytes_; }
  void swap(DeviceBuffer& other) noexcept {
    std::swap(owner_, other.owner_);
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
  }

 private:
  Backend* owner_ = nullptr;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

/// What a backend keeps for one table between operations (the CUDA backend: the table's own stream
/// and its workspace). Created by Backend::open_table, owned by the table, released before it.
class TableResources {
 public:
  virtual ~TableResources() = default;
};

/// A table's memory on its backend.
struct TableView {
  float* weights = nullptr;  // (input_dim, dim)
  float* slot0 = nullptr;    // the optimizer's first state array, if any
  float* slot1 = nullptr;    // its second, if any
  std::int64_t input_dim = 0;
  std::int64_t dim = 0;
  Padding padding;  // the table's padding_idx, if it has one
  void* stream = nullptr;  // a caller-owned cudaStream_t the table's work goes on (CUDA only)
  TableResources* resources = nullptr;  // from open_table(); NULL for a backend that keeps none
};

/// Ids on a backend, typed.
struct DeviceIds {
  const void* data = nullptr;
  IndexType type = IndexType::int64;
  std::int64_t count = 0;
};

/// Typed ids in host memory as DeviceIds.
inline DeviceIds host_ids(const std::int32_t* ids, std::int64_t count) { return {ids, IndexType::int32, count}; }
inline DeviceIds host_ids(const std::int64_t* ids, std::int64_t count) { return {ids, IndexType::int64, count}; }
/// A caller's index tensor as DeviceIds.
inline DeviceIds host_ids(const IndexTensor& indices) { return {indices.data(), indices.type(), indices.size()}; }

/// The out-of-range ids an operation met (see Backend::checks_ids): how many, and the first by
/// position.
struct IdCheck {
  std::int64_t out_of_range = 0;
  std::int64_t first_position = -1;
  std::int64_t first_id = 0;
};

/// A folded gradient on a backend: `count` strictly increasing ids and their rows.
struct FoldedGrad {
  DeviceBuffer ids;   // int64[count]
  DeviceBuffer rows;  // float[count × dim]
  std::int64_t count = 0;
};

/// One optimizer step as the table hands it to a backend, by value: the rule every updated row
/// gets (detail/row_step.hpp, what the CPU loops and the kernels read) and which rows it covers.
struct StepPlan {
  StepRule rule;
  bool dense = false;  // Adam without lazy: every row of [row_begin, row_end) but padding moves
  std::int64_t row_begin = 0;
  std::int64_t row_end = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  /// "cpu", "cuda:0", "sim:0".
  virtual std::string name() const = 0;
  virtual DeviceKind kind() const = 0;
  virtual MemoryInfo memory_info() const = 0;
  /// Whether this backend has kernels for every table operation (the CUDA backend does not yet).
  virtual bool runs_table_ops() const = 0;
  /// Whether its memory can be read by host code (only the CPU's).
  virtual bool host_accessible() const = 0;
  /// Whether gather, pooled and the folds find out-of-range ids themselves, in their own pass over
  /// the ids (a device: no pass over them on the host first). Otherwise the caller checks first.
  virtual bool checks_ids() const { return false; }

  /// Allocates `bytes` (named `what` in errors). Throws Error(out_of_memory) when it cannot.
  virtual DeviceBuffer allocate(std::size_t bytes, std::string_view what) = 0;
  /// Returns memory from allocate(); called by DeviceBuffer.
  virtual void deallocate(void* data, std::size_t bytes) noexcept = 0;
  virtual void copy_from_host(void* destination, const void* host, std::size_t bytes) = 0;
  virtual void copy_to_host(void* host, const void* source, std::size_t bytes) = 0;
  /// Whether [data, data + bytes) lies in memory this backend allocated.
  virtual bool owns(const void* data, std::size_t bytes) const = 0;
  /// Makes this thread's copies and allocations on this backend go on `stream` (a cudaStream_t
  /// on CUDA; NULL: the backend's own stream) and returns the stream bound before. A backend
  /// without streams ignores it.
  virtual void* bind_stream(void* stream) {
    (void)stream;
    return nullptr;
  }
  /// The per-table state of a new table (or of one migrated here); NULL when none is kept.
  /// Throws Error when it cannot be created.
  virtual std::unique_ptr<TableResources> open_table() { return nullptr; }

  // Operations. Every pointer is this backend's memory; arguments were validated by the caller.
  virtual void fill_initial(float* weights, std::int64_t rows, std::int64_t dim, const InitSampler& sampler,
                            std::uint64_t seed) = 0;
  virtual void fill(float* data, std::int64_t count, float value) = 0;
  // Out-of-range ids read as zeros and receive no gradient. With a non-NULL `check` (only where
  // checks_ids() is true), the operation also reports them there, found in its own pass.
  virtual void gather(const TableView& table, const DeviceIds& ids, float* out, IdCheck* check) = 0;
  virtual void pooled(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets, std::int64_t bags,
                      const float* sample_weights, PoolingMode mode, float* out, IdCheck* check) = 0;
  /// The sparse gradient of gather from `grad_out` (ids.count × dim), padding and bad ids left out.
  virtual FoldedGrad fold_lookup_grad(const TableView& table, const DeviceIds& ids, const float* grad_out,
                                      IdCheck* check) = 0;
  /// The sparse gradient of pooled from `grad_bags` (bags × dim).
  virtual FoldedGrad fold_pooled_grad(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                                      std::int64_t bags, const float* sample_weights, PoolingMode mode,
                                      const float* grad_bags, IdCheck* check) = 0;
  /// skip[u] = 1 for rows of `grad` holding a NaN or infinity, among those not already skipped;
  /// returns how many.
  virtual std::int64_t mark_nonfinite(const FoldedGrad& grad, std::int64_t dim, std::uint8_t* skip) = 0;
  /// One optimizer step from `grad`, leaving rows with skip[u] != 0 alone. Returns how many rows
  /// it left alone because plan.rule.judge_results rejected their update.
  virtual std::int64_t apply(const TableView& table, const FoldedGrad& grad, const std::uint8_t* skip,
                             StepPlan plan) = 0;
  /// The smallest id whose update apply would reject under plan.rule.judge_results, or -1, computed
  /// without changing the table.
  virtual std::int64_t first_rejected_update(const TableView& table, const FoldedGrad& grad,
                                             const std::uint8_t* skip, StepPlan plan) = 0;
  /// Whether fold_and_apply can take a train step of rows of `dim` (default: no fused path).
  virtual bool fuses_steps(std::int64_t dim) const {
    (void)dim;
    return false;
  }
  /// A train step folded and applied at once from the lookup gradient `grad_rows` (ids.count ×
  /// dim), with a sparse (not dense) `plan`: bit for bit what fold_lookup_grad, then (when
  /// skip_nonfinite) mark_nonfinite, then apply compute, without handing the sparse gradient out.
  /// Returns how many rows it left alone as non-finite (gradient or, under plan.rule.judge_results, update). Every allocation comes before any change:
  /// on Error(out_of_memory) the table is as it was. Only called when fuses_steps(table.dim).
  /// With a non-NULL `check`, out-of-range ids are reported there and then nothing is applied.
  virtual std::int64_t fold_and_apply(const TableView& table, const DeviceIds& ids, const float* grad_rows,
                                      StepPlan plan, bool skip_nonfinite, IdCheck* check) {
    (void)table, (void)ids, (void)grad_rows, (void)plan, (void)skip_nonfinite, (void)check;
    throw Error(Status::internal, name() + " has no fused train step");
  }
  /// fold_and_apply for a pooled step: what fold_pooled_grad, then mark_nonfinite, then apply
  /// compute, under the same promises.
  virtual std::int64_t fold_pooled_and_apply(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                                             std::int64_t bags, const float* sample_weights, PoolingMode mode,
                                             const float* grad_bags, StepPlan plan, bool skip_nonfinite,
                                             IdCheck* check) {
    (void)table, (void)ids, (void)offsets, (void)bags, (void)sample_weights, (void)mode, (void)grad_bags, (void)plan,
        (void)skip_nonfinite, (void)check;
    throw Error(Status::internal, name() + " has no fused train step");
  }
  /// The constraint on every row.
  virtual void constrain_all(const TableView& table, const Constraint& constraint) = 0;
  /// l1·Σ|w| + l2·Σw² over `count` weights, the same on any thread count.
  virtual double penalty(const float* weights, std::int64_t count, double l1, double l2) = 0;
};

/// Binds a stream to this thread's copies on `backend` for the scope's length.
class BoundStream {
 public:
  BoundStream(Backend& backend, void* stream) : backend_(backend), previous_(backend.bind_stream(stream)) {}
  ~BoundStream() { backend_.bind_stream(previous_); }
  BoundStream(const BoundStream&) = delete;
  BoundStream& operator=(const BoundStream&) = delete;

 private:
  Backend& backend_;
  void* previous_;
};

inline DeviceBuffer::~DeviceBuffer() {
  if (owner_ != nullptr && data_ != nullptr) owner_->deallocate(data_, bytes_);
}

}  // namespace embedkit::detail
