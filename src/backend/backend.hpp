#pragma once
// The Backend interface: what runs a table's operations on the memory of backend/memory.hpp. The
// table talks only to this; CpuBackend (host memory, OpenMP loops), SimDeviceBackend (a simulated
// device for tests) and CudaBackend (kernels/) implement it. Every pointer an operation takes is
// memory of that backend; the table stages host inputs across before calling. What a backend can
// do is one BackendCapabilities; the fused train step is an optional interface (FusedStep).

#include <embedkit/config.hpp>
#include <embedkit/detail/init_sampler.hpp>
#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/detail/padding.hpp>
#include <embedkit/detail/row_step.hpp>
#include <embedkit/detail/stored_row.hpp>
#include <embedkit/dtype.hpp>
#include <embedkit/placement.hpp>
#include <embedkit/pooling.hpp>
#include <embedkit/status.hpp>
#include <embedkit/tensor.hpp>

#include "backend/memory.hpp"
#include "core/ids.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace embedkit::detail {

/// What a backend keeps for one table between operations (the CUDA backend: the table's own stream
/// and its workspace). Created by Backend::open_table, owned by the table, released before it.
class TableResources {
 public:
  virtual ~TableResources() = default;
};

/// The element type a table's rows are stored in (detail/stored_row.hpp has the element types and
/// their conversions); each backend's operations dispatch on it with detail::with_dtype.
using StorageType = DType;

/// Bytes of one stored element.
constexpr std::size_t storage_bytes(StorageType type) { return dtype_bytes(type); }

/// A table's rows on its backend, in their storage type.
struct StoredRows {
  void* data = nullptr;  // (input_dim, dim) elements of `type`
  StorageType type = StorageType::float32;

  /// The rows as `T` (float, float16 or bfloat16), which must be their storage type: Error(internal)
  /// otherwise.
  template <class T>
  T* as() const {
    if (type != dtype_of<std::remove_const_t<T>>()) {
      throw Error(Status::internal, std::string("table rows stored as ") + to_string(type) + " read as " +
                                        to_string(dtype_of<std::remove_const_t<T>>()));
    }
    return static_cast<T*>(data);
  }
};

/// The optimizer's state on the backend: float32 whatever the rows' storage type (an accumulator
/// in a narrower type would drop small squares), laid out as the optimizer's descriptor says
/// (detail/optimizer_math.hpp).
struct OptimizerStateArrays {
  float* slot0 = nullptr;  // the first state array, if any
  float* slot1 = nullptr;  // the second, if any
};

/// A table's memory on its backend.
struct TableView {
  StoredRows weights;
  OptimizerStateArrays state;
  std::int64_t input_dim = 0;
  std::int64_t dim = 0;
  Padding padding;                      // the table's padding_idx, if it has one
  void* stream = nullptr;               // a caller-owned cudaStream_t the table's work goes on (CUDA only)
  TableResources* resources = nullptr;  // from open_table(); NULL for a backend that keeps none
};

/// Ids on a backend, typed.
struct DeviceIds {
  const void* data = nullptr;
  IndexType type = IndexType::int64;
  std::int64_t count = 0;
};

/// Bytes of `ids`.
inline std::size_t id_bytes(const DeviceIds& ids) { return id_bytes(ids.type, ids.count); }

/// Calls body(ids) with `ids` typed as they are stored (core/ids.hpp's dispatch).
template <class Body>
inline decltype(auto) with_ids(const DeviceIds& ids, Body&& body) {
  return with_typed_ids(ids.data, ids.type, std::forward<Body>(body));
}

/// Typed ids in host memory as DeviceIds.
inline DeviceIds host_ids(const std::int32_t* ids, std::int64_t count) { return {ids, IndexType::int32, count}; }
inline DeviceIds host_ids(const std::int64_t* ids, std::int64_t count) { return {ids, IndexType::int64, count}; }
/// A caller's index tensor as DeviceIds.
inline DeviceIds host_ids(const IndexTensor& indices) { return {indices.data(), indices.type(), indices.size()}; }

/// The out-of-range ids an operation met (see BackendCapabilities::checks_ids): how many, and the first by
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
  bool dense = false;  // lazy: false (detail::updates_every_row): every row of [row_begin, row_end) but padding moves
  std::int64_t row_begin = 0;
  std::int64_t row_end = 0;
};

/// What a backend can do, in one place.
struct BackendCapabilities {
  /// Its table kernels are verified, so placement may put a table on it: the CPU's and the
  /// simulated device's are; the CUDA backend's only under EMBEDKIT_CUDA_TABLES=1 until they have
  /// run on a GPU (placement's cuda_kernels_unverified gate).
  bool kernels_verified = false;
  /// gather, pooled and the folds find out-of-range ids themselves, in their own pass over the ids
  /// (a device: no pass over them on the host first). Otherwise the caller checks first.
  bool checks_ids = false;
  /// It runs tables stored as float16 and bfloat16 (StorageType), not only float32.
  bool narrow_rows = false;
};

/// A train step folded and applied in one call, the sparse gradient never handed out: offered by
/// backends that have one (Backend::fused_step), absent otherwise.
class FusedStep {
 public:
  virtual ~FusedStep() = default;
  /// Whether fold_and_apply can take a train step of rows of `dim`.
  virtual bool fuses(std::int64_t dim) const = 0;
  /// A train step from the lookup gradient `grad_rows` (ids.count × dim), with a sparse (not dense)
  /// `plan`: bit for bit what fold_lookup_grad, then (when skip_nonfinite) mark_nonfinite, then
  /// apply compute. Returns how many rows it left alone as non-finite (gradient or, under
  /// plan.rule.judge_results, update). Every allocation comes before any change: on
  /// Error(out_of_memory) the table is as it was. Only called when fuses(table.dim). With a non-NULL
  /// `check`, out-of-range ids are reported there and then nothing is applied.
  virtual std::int64_t fold_and_apply(const TableView& table, const DeviceIds& ids, const float* grad_rows,
                                      StepPlan plan, bool skip_nonfinite, IdCheck* check) = 0;
  /// fold_and_apply for a pooled step: what fold_pooled_grad, then mark_nonfinite, then apply
  /// compute, under the same promises.
  virtual std::int64_t fold_pooled_and_apply(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                                             std::int64_t bags, const float* sample_weights, PoolingMode mode,
                                             const float* grad_bags, StepPlan plan, bool skip_nonfinite,
                                             IdCheck* check) = 0;
};

/// A backend: its memory (BackendMemory) and the table operations that run on it.
class Backend : public BackendMemory {
 public:
  virtual BackendCapabilities capabilities() const = 0;
  /// The fused train step, or NULL where the backend has none.
  virtual FusedStep* fused_step() { return nullptr; }
  /// The per-table state of a new table (or of one migrated here); NULL when none is kept.
  /// Throws Error when it cannot be created.
  virtual std::unique_ptr<TableResources> open_table() { return nullptr; }

  // Operations. Every pointer is this backend's memory; arguments were validated by the caller.
  virtual void fill_initial(const StoredRows& weights, std::int64_t rows, std::int64_t dim, const InitSampler& sampler,
                            std::uint64_t seed) = 0;
  virtual void fill(float* data, std::int64_t count, float value) = 0;
  // Out-of-range ids read as zeros and receive no gradient. With a non-NULL `check` (only where
  // capabilities().checks_ids), the operation also reports them there, found in its own pass.
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
  virtual std::int64_t first_rejected_update(const TableView& table, const FoldedGrad& grad, const std::uint8_t* skip,
                                             StepPlan plan) = 0;
  /// torch's max_norm before a lookup (detail/renorm_math.hpp): each distinct row of `ids` in
  /// [0, table.input_dim) whose `norm_type`-norm exceeds `max_norm` is scaled by
  /// max_norm / (norm + 1e-7), once however often it occurs; out-of-range ids are left out, padding
  /// is not. Throws Error(out_of_memory) for its scratch before any row changes.
  virtual void renorm_rows(const TableView& table, const DeviceIds& ids, double max_norm, double norm_type) = 0;
  /// The constraint on every row.
  virtual void constrain_all(const TableView& table, const Constraint& constraint) = 0;
  /// l1·Σ|w| + l2·Σw² over `count` weights, the same on any thread count.
  virtual double penalty(const StoredRows& weights, std::int64_t count, double l1, double l2) = 0;
};

}  // namespace embedkit::detail
