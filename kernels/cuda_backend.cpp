#include "cuda_backend.hpp"

#include <embedkit/detail/penalty.hpp>
#include <embedkit/detail/pooled_batch.hpp>
#include <embedkit/status.hpp>

#include "core/log.hpp"
#include "cuda_allocator.hpp"
#include "cuda_device_scope.hpp"
#include "cuda_table_resources.hpp"
#include "cuda_try.hpp"
#include "fold_workspace.hpp"
#include "fused_apply.hpp"
#include "gather.hpp"
#include "id_check.hpp"
#include "optimizer.hpp"
#include "pooled.hpp"
#include "renorm.hpp"
#include "sparse_grad.hpp"
#include "table_ops.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

namespace embedkit::kernels {

namespace {

// The staging pool's shape, its chunk from EMBEDKIT_PINNED_CHUNK_BYTES when that is a count of bytes.
StagingLimits staging_limits() {
  StagingLimits limits;
  const char* text = std::getenv("EMBEDKIT_PINNED_CHUNK_BYTES");
  if (text == nullptr) return limits;
  if (const std::optional<std::size_t> bytes = parse_staging_chunk_bytes(text)) {
    limits.chunk_bytes = *bytes;
  } else {
    detail::logger().warn(
        "EMBEDKIT_PINNED_CHUNK_BYTES='{}' is not a positive count of bytes; pinned staging copies in "
        "chunks of {} bytes",
        text, limits.chunk_bytes);
  }
  return limits;
}

}  // namespace

CudaBackend::CudaBackend(int ordinal, bool kernels_enabled)
    : ordinal_(ordinal), kernels_enabled_(kernels_enabled), staging_(CudaStagingOps{}, staging_limits()) {
  const CheckedDeviceScope scope(ordinal_);
  EMBEDKIT_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaBackend::~CudaBackend() {
  // On the backend's device, and the caller's device again afterwards.
  const CudaDeviceScope scope(CudaDevices{}, ordinal_);
  if (stream_ != nullptr) {
    (void)cudaStreamSynchronize(stream_);
    (void)cudaStreamDestroy(stream_);
  }
  staging_.release_idle();   // the rings' events belong to this device
  (void)cudaGetLastError();  // a failure here (the runtime unloading at exit) is nobody's to report
}

detail::MemoryInfo CudaBackend::memory_info() const {
  const CheckedDeviceScope scope(ordinal_);
  std::size_t free_bytes = 0, total_bytes = 0;
  EMBEDKIT_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
  // The default pool keeps what it freed mapped (allocation_policy.hpp): free for our allocations.
  free_bytes = std::min(total_bytes, free_bytes + idle_pool_bytes(ordinal_));
  return {free_bytes, total_bytes};
}

detail::DeviceBuffer CudaBackend::allocate(std::size_t bytes, std::string_view what) {
  const CheckedDeviceScope scope(ordinal_);
  void* data = cuda_allocate(ordinal_, bytes == 0 ? 1 : bytes, active_stream());
  if (data == nullptr) {
    throw Error(Status::out_of_memory,
                std::string(what) + ": allocating " + std::to_string(bytes) + " bytes on " + name() + " failed");
  }
  return detail::DeviceBuffer(this, data, bytes);
}

void CudaBackend::deallocate(void* data, std::size_t) noexcept {
  const CudaDeviceScope scope(CudaDevices{}, ordinal_);
  if (scope.error() != 0) return;  // the runtime is gone (the process is exiting): nothing to give back
  // Inside an operation (its temporaries, freed as it returns or unwinds) the free is ordered after
  // the work the operation queued on its stream. Outside one, every operation has waited for its
  // stream, at its end or, left by an exception, while unwinding (CheckedDeviceScope), so no queued
  // work reads `data` any more.
  cuda_free(ordinal_, data, active_stream());
}

void CudaBackend::copy_from_host(void* destination, const void* host, std::size_t bytes) {
  if (bytes == 0) return;
  const CheckedDeviceScope scope(ordinal_, active_stream());
  staging_.to_device(destination, host, bytes, active_stream());  // pageable memory cannot be copied asynchronously
}

void CudaBackend::copy_to_host(void* host, const void* source, std::size_t bytes) {
  if (bytes == 0) return;
  const CheckedDeviceScope scope(ordinal_, active_stream());
  staging_.to_host(host, source, bytes, active_stream());
}

bool CudaBackend::owns(const void* data, std::size_t) const {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, data) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeDevice && attributes.device == ordinal_;
}

namespace {

// The stream an operation runs on while it runs: the table's caller-owned stream, if it has one.
thread_local cudaStream_t operation_stream = nullptr;

// Sets the operation's stream for its length.
class OperationStream {
 public:
  explicit OperationStream(cudaStream_t stream) : previous_(operation_stream) { operation_stream = stream; }
  cudaStream_t get() const { return operation_stream; }
  ~OperationStream() { operation_stream = previous_; }
  OperationStream(const OperationStream&) = delete;
  OperationStream& operator=(const OperationStream&) = delete;

 private:
  cudaStream_t previous_;
};

CudaTableResources& resources_of(const detail::TableView& table) {
  auto* resources = dynamic_cast<CudaTableResources*>(table.resources);
  if (resources == nullptr) {
    throw Error(Status::internal, "a table on a CUDA device reached its backend without its CUDA resources");
  }
  return *resources;
}

// One operation on one table: on the backend's device, on the table's stream (the caller's when
// set, the table's own otherwise), with the table's workspace to itself. Left by an exception, it
// waits for its stream before it lets the workspace go and before the caller frees its staged
// inputs: the kernels queued before the throw may still read them.
class TableOperation {
 public:
  TableOperation(int ordinal, const detail::TableView& table)
      : resources_(resources_of(table)),
        lock_(resources_.mutex()),
        stream_(table.stream != nullptr ? static_cast<cudaStream_t>(table.stream) : resources_.stream()),
        device_(ordinal, stream_.get()) {}
  detail::Workspace& workspace() { return resources_.workspace(); }
  // The fold's layout for a batch of `count` positions, CUB's scratch included; planned (and CUB
  // asked) again only when the batch size changes.
  const FoldWorkspace& fold_layout(std::int64_t count, const detail::TableView& table) {
    CudaTableResources::FoldPlan& plan = resources_.fold_plan();
    if (plan.count != count) {
      plan.layout = plan_fold_workspace(count, table.dim, query_fold_cub_bytes(count, table.input_dim, stream_.get()));
      plan.count = count;
    }
    return plan.layout;
  }

 private:
  CudaTableResources& resources_;
  std::unique_lock<std::mutex> lock_;
  OperationStream stream_;
  CheckedDeviceScope device_;  // last: destroyed (and, unwinding, synchronised) first
};

// The bounds check's second pass over `ids`, reported to `check`, with scratch from `workspace`.
void find_out_of_range(const detail::DeviceIds& ids, std::int64_t input_dim, void* scratch, cudaStream_t stream,
                       detail::IdCheck* check) {
  const OutOfRangeIds found = detail::with_ids(ids, [&](const auto* typed) {
    return run_find_out_of_range(typed, ids.count, input_dim, scratch, stream);
  });
  *check = detail::IdCheck{found.count, found.first_position, found.first_id};
}

// Ends an operation whose kernel raised `flag` on an out-of-range id (the second pass's tallies
// follow it at kFoldAlignment): reads the flag with the call's one synchronisation and, when it is
// up and `check` asks, runs the second pass into `check`.
void finish_checked(const detail::DeviceIds& ids, std::int64_t input_dim, unsigned int* flag, cudaStream_t stream,
                    detail::IdCheck* check) {
  unsigned int raised = 0;
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(&raised, flag, sizeof raised, cudaMemcpyDeviceToHost, stream));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(stream));
  if (check == nullptr) return;
  *check = {};
  if (raised != 0) find_out_of_range(ids, input_dim, flag + kFoldAlignment / sizeof *flag, stream, check);
}

// The kernels' view of what a step does to each row it updates.
RowStep row_step(const detail::TableView& table, detail::StepPlan plan) {
  return RowStep{table.weights.as<float>(), table.state.slot0, table.state.slot1, table.dim, plan.rule};
}

// The unfused optimizer kernels' arguments for one step of `grad`.
ApplyArgs apply_args(const detail::TableView& table, const detail::FoldedGrad& grad, const std::uint8_t* skip,
                     detail::StepPlan plan) {
  return ApplyArgs{row_step(table, plan),
                   grad.ids.as<const std::int64_t>(),
                   grad.rows.as<const float>(),
                   skip,
                   grad.count,
                   plan.dense,
                   plan.row_begin,
                   plan.row_end,
                   table.padding};
}

// The lane groups of one unfused step: a row each, touched or (dense) of the plan's range.
std::int64_t apply_groups(const detail::FoldedGrad& grad, detail::StepPlan plan) {
  return plan.dense ? plan.row_end - plan.row_begin : grad.count;
}

// A step's counter or id: one device word in the table's workspace, which every fold of the step
// has grown well past it, so the reserve allocates nothing and no part of a step fails after
// another has changed the table.
unsigned long long* step_word(detail::Backend& backend, detail::Workspace& workspace) {
  return static_cast<unsigned long long*>(workspace.reserve(backend, kFoldAlignment, "table workspace"));
}

// Bytes a pooled step's entry rows need besides their own: for max, the forward pass's output
// and argmax, whose argmax says which entry takes each column's gradient.
std::size_t entry_rows_scratch_bytes(PoolingMode mode, std::int64_t bags, std::int64_t dim) {
  if (!detail::picks_entry(mode)) return 0;
  const auto cells = static_cast<std::size_t>(bags * dim);
  return fold_align(cells * sizeof(float)) + fold_align(cells * sizeof(std::int64_t));
}

// Each entry's gradient row of a pooled batch, written to `rows` (ids.count × dim), with
// entry_rows_scratch_bytes of `scratch`.
void write_entry_rows(const detail::TableView& table, const detail::DeviceIds& ids, const std::int64_t* offsets,
                      std::int64_t bags, const float* sample_weights, PoolingMode mode, const float* grad_bags,
                      float* rows, unsigned char* scratch, cudaStream_t stream) {
  detail::with_ids(ids, [&](const auto* typed) {
    using Index = std::remove_cv_t<std::remove_pointer_t<decltype(typed)>>;
    const detail::PooledBatch<Index> batch{typed, offsets, bags, sample_weights, mode, table.padding};
    std::int64_t* argmax = nullptr;
    if (detail::picks_entry(mode)) {
      auto* pooled = reinterpret_cast<float*>(scratch);
      argmax = reinterpret_cast<std::int64_t*>(scratch +
                                               fold_align(static_cast<std::size_t>(bags * table.dim) * sizeof(float)));
      run_pooled(table.weights.as<float>(), table.input_dim, table.dim, batch, pooled, nullptr, argmax, stream);
    }
    run_entry_rows(EntryRowsArgs<Index>{argmax, table.dim, batch, grad_bags, rows}, stream);
  });
}

}  // namespace

void CudaBackend::fill_initial(const detail::StoredRows& weights, std::int64_t rows, std::int64_t dim,
                               const detail::InitSampler& sampler, std::uint64_t seed) {
  const CheckedDeviceScope scope(ordinal_, active_stream());
  run_fill_initial(FillInitialArgs{weights.as<float>(), rows, dim, sampler, seed}, active_stream());
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

void CudaBackend::fill(float* data, std::int64_t count, float value) {
  const CheckedDeviceScope scope(ordinal_, active_stream());
  run_fill(FillArgs{data, count, value}, active_stream());
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

void* CudaBackend::bind_stream(void* stream) {
  void* previous = operation_stream;
  operation_stream = static_cast<cudaStream_t>(stream);
  return previous;
}

std::unique_ptr<detail::TableResources> CudaBackend::open_table() {
  return std::make_unique<CudaTableResources>(ordinal_);
}

void CudaBackend::gather(const detail::TableView& table, const detail::DeviceIds& ids, float* out,
                         detail::IdCheck* check) {
  TableOperation operation(ordinal_, table);
  // The flag, then the second pass's tallies.
  auto* flag = static_cast<unsigned int*>(operation.workspace().reserve(*this, 2 * kFoldAlignment, "table workspace"));
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(flag, 0, sizeof(unsigned int), active_stream()));
  detail::with_ids(ids, [&](const auto* typed) {
    run_gather(table.weights.as<float>(), table.input_dim, table.dim, typed, ids.count, table.padding, out, flag,
               active_stream());
  });
  finish_checked(ids, table.input_dim, flag, active_stream(), check);
}

void CudaBackend::pooled(const detail::TableView& table, const detail::DeviceIds& ids, const std::int64_t* offsets,
                         std::int64_t bags, const float* sample_weights, PoolingMode mode, float* out,
                         detail::IdCheck* check) {
  TableOperation operation(ordinal_, table);
  // The flag, then the second pass's tallies.
  auto* flag = static_cast<unsigned int*>(operation.workspace().reserve(*this, 2 * kFoldAlignment, "table workspace"));
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(flag, 0, sizeof(unsigned int), active_stream()));
  detail::with_ids(ids, [&](const auto* typed) {
    run_pooled(table.weights.as<float>(), table.input_dim, table.dim,
               detail::pooled_batch(typed, offsets, bags, sample_weights, mode, table.padding), out, flag, nullptr,
               active_stream());
  });
  finish_checked(ids, table.input_dim, flag, active_stream(), check);
}

cudaStream_t CudaBackend::active_stream() const { return operation_stream != nullptr ? operation_stream : stream_; }

FoldPieces CudaBackend::fold_pieces(const detail::TableView& table, const detail::DeviceIds& ids, const float* rows,
                                    unsigned char* workspace, const FoldWorkspace& layout, detail::IdCheck* check) {
  const FoldPieces pieces = detail::with_ids(ids, [&](const auto* typed) {
    return run_fold_pieces(typed, ids.count, table.input_dim, table.padding, rows, table.dim, workspace, layout,
                           active_stream());
  });
  if (check != nullptr) {
    *check = {};
    // The tallies go where the piece ends were: the pieces are summed by now.
    if (pieces.out_of_range)
      find_out_of_range(ids, table.input_dim, workspace + layout.piece_end, active_stream(), check);
  }
  return pieces;
}

detail::FoldedGrad CudaBackend::fold(const detail::TableView& table, const detail::DeviceIds& ids, const float* rows,
                                     unsigned char* workspace, const FoldWorkspace& layout, detail::IdCheck* check) {
  const FoldPieces pieces = fold_pieces(table, ids, rows, workspace, layout, check);
  detail::FoldedGrad grad;
  grad.count = pieces.runs;
  grad.ids = allocate(static_cast<std::size_t>(pieces.runs) * sizeof(std::int64_t), "sparse gradient ids");
  grad.rows = allocate(static_cast<std::size_t>(pieces.runs * table.dim) * sizeof(float), "sparse gradient rows");
  run_fold_rows(pieces, table.dim, grad.ids.as<std::int64_t>(), grad.rows.as<float>(), active_stream());
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
  return grad;
}

detail::FoldedGrad CudaBackend::fold_lookup_grad(const detail::TableView& table, const detail::DeviceIds& ids,
                                                 const float* grad_out, detail::IdCheck* check) {
  TableOperation operation(ordinal_, table);
  const FoldWorkspace layout = operation.fold_layout(ids.count, table);
  auto* workspace = static_cast<unsigned char*>(operation.workspace().reserve(*this, layout.bytes, "table workspace"));
  return fold(table, ids, grad_out, workspace, layout, check);
}

detail::FoldedGrad CudaBackend::fold_pooled_grad(const detail::TableView& table, const detail::DeviceIds& ids,
                                                 const std::int64_t* offsets, std::int64_t bags,
                                                 const float* sample_weights, PoolingMode mode, const float* grad_bags,
                                                 detail::IdCheck* check) {
  TableOperation operation(ordinal_, table);
  // The workspace holds each entry's gradient row, then the fold's intermediates, which the entry
  // rows' own scratch precedes in time (one stream orders them) and so shares bytes with.
  const std::size_t rows_bytes = fold_align(static_cast<std::size_t>(ids.count * table.dim) * sizeof(float));
  const FoldWorkspace layout = operation.fold_layout(ids.count, table);
  const std::size_t after_rows = std::max(layout.bytes, entry_rows_scratch_bytes(mode, bags, table.dim));
  auto* workspace =
      static_cast<unsigned char*>(operation.workspace().reserve(*this, rows_bytes + after_rows, "table workspace"));
  auto* rows = reinterpret_cast<float*>(workspace);
  write_entry_rows(table, ids, offsets, bags, sample_weights, mode, grad_bags, rows, workspace + rows_bytes,
                   active_stream());
  return fold(table, ids, rows, workspace + rows_bytes, layout, check);
}

std::int64_t CudaBackend::mark_nonfinite(const detail::FoldedGrad& grad, std::int64_t dim, std::uint8_t* skip) {
  const CheckedDeviceScope scope(ordinal_, active_stream());
  run_nonfinite(NonFiniteArgs{grad.rows.as<const float>(), grad.count, dim, skip}, active_stream());
  std::vector<std::uint8_t> flags(static_cast<std::size_t>(grad.count));
  copy_to_host(flags.data(), skip, flags.size());
  return std::count(flags.begin(), flags.end(), std::uint8_t{2});
}

std::int64_t CudaBackend::apply(const detail::TableView& table, const detail::FoldedGrad& grad,
                                const std::uint8_t* skip, detail::StepPlan plan) {
  TableOperation operation(ordinal_, table);
  ApplyArgs args = apply_args(table, grad, skip, plan);
  unsigned long long rejected = 0;
  if (plan.rule.judge_results) {
    args.rejected = step_word(*this, operation.workspace());
    EMBEDKIT_CUDA_TRY(cudaMemsetAsync(args.rejected, 0, sizeof rejected, active_stream()));
  }
  run_apply(args, apply_groups(grad, plan), active_stream());
  if (plan.rule.judge_results) {
    EMBEDKIT_CUDA_TRY(
        cudaMemcpyAsync(&rejected, args.rejected, sizeof rejected, cudaMemcpyDeviceToHost, active_stream()));
  }
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
  return static_cast<std::int64_t>(rejected);
}

std::int64_t CudaBackend::first_rejected_update(const detail::TableView& table, const detail::FoldedGrad& grad,
                                                const std::uint8_t* skip, detail::StepPlan plan) {
  TableOperation operation(ordinal_, table);
  const ApplyArgs args = apply_args(table, grad, skip, plan);
  unsigned long long* first = step_word(*this, operation.workspace());
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(first, 0xff, sizeof *first, active_stream()));  // ~0: none
  run_find_rejected(args, apply_groups(grad, plan), first, active_stream());
  unsigned long long found = 0;
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(&found, first, sizeof found, cudaMemcpyDeviceToHost, active_stream()));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
  return found == ~0ull ? -1 : static_cast<std::int64_t>(found);
}

bool CudaBackend::fuses(std::int64_t dim) const { return fits_fused(dim); }

std::int64_t CudaBackend::fold_and_apply(const detail::TableView& table, const detail::DeviceIds& ids,
                                         const float* grad_rows, detail::StepPlan plan, bool skip_nonfinite,
                                         detail::IdCheck* check) {
  TableOperation operation(ordinal_, table);
  const FoldWorkspace layout = operation.fold_layout(ids.count, table);
  // The fold's intermediates, then the skip counter: all there before the table changes.
  auto* workspace = static_cast<unsigned char*>(
      operation.workspace().reserve(*this, layout.bytes + kFoldAlignment, "table workspace"));
  return fused_step(table, ids, grad_rows, workspace, layout, plan, skip_nonfinite, check);
}

std::int64_t CudaBackend::fold_pooled_and_apply(const detail::TableView& table, const detail::DeviceIds& ids,
                                                const std::int64_t* offsets, std::int64_t bags,
                                                const float* sample_weights, PoolingMode mode, const float* grad_bags,
                                                detail::StepPlan plan, bool skip_nonfinite, detail::IdCheck* check) {
  TableOperation operation(ordinal_, table);
  const std::size_t rows_bytes = fold_align(static_cast<std::size_t>(ids.count * table.dim) * sizeof(float));
  const FoldWorkspace layout = operation.fold_layout(ids.count, table);
  const std::size_t after_rows =
      std::max(layout.bytes + kFoldAlignment, entry_rows_scratch_bytes(mode, bags, table.dim));
  auto* workspace =
      static_cast<unsigned char*>(operation.workspace().reserve(*this, rows_bytes + after_rows, "table workspace"));
  auto* rows = reinterpret_cast<float*>(workspace);
  // The entry rows read the weights before the step changes them: the one stream orders the two.
  write_entry_rows(table, ids, offsets, bags, sample_weights, mode, grad_bags, rows, workspace + rows_bytes,
                   active_stream());
  return fused_step(table, ids, rows, workspace + rows_bytes, layout, plan, skip_nonfinite, check);
}

std::int64_t CudaBackend::fused_step(const detail::TableView& table, const detail::DeviceIds& ids, const float* rows,
                                     unsigned char* workspace, const FoldWorkspace& layout, detail::StepPlan plan,
                                     bool skip_nonfinite, detail::IdCheck* check) {
  const FoldPieces pieces = fold_pieces(table, ids, rows, workspace, layout, check);
  if (check != nullptr && check->out_of_range > 0) return 0;  // reported, and nothing applied: the caller decides
  auto* skipped = reinterpret_cast<unsigned long long*>(workspace + layout.bytes);
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(skipped, 0, sizeof *skipped, active_stream()));
  if (pieces.runs > 0) {
    run_fused_apply(FusedApplyArgs{row_step(table, plan), pieces.ids, pieces.first_piece, pieces.runs,
                                   pieces.piece_sums, skip_nonfinite, skipped},
                    active_stream());
  }
  unsigned long long count = 0;
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(&count, skipped, sizeof count, cudaMemcpyDeviceToHost, active_stream()));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
  return static_cast<std::int64_t>(count);
}

void CudaBackend::renorm_rows(const detail::TableView& table, const detail::DeviceIds& ids, double max_norm,
                              double norm_type) {
  if (ids.count == 0) return;
  TableOperation operation(ordinal_, table);
  const auto bytes = static_cast<std::size_t>(renorm_claim_words(table.input_dim)) * sizeof(unsigned int);
  auto* claimed = static_cast<unsigned int*>(operation.workspace().reserve(*this, bytes, "table workspace"));
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(claimed, 0, bytes, active_stream()));
  const detail::RenormRule rule = detail::renorm_rule(max_norm, norm_type);
  detail::with_ids(ids, [&](const auto* typed) {
    using Index = std::remove_cv_t<std::remove_pointer_t<decltype(typed)>>;
    run_renorm(RenormArgs<Index>{table.weights.as<float>(), table.input_dim, table.dim, typed, ids.count, claimed,
                                 rule},
               active_stream());
  });
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

void CudaBackend::constrain_all(const detail::TableView& table, const Constraint& constraint) {
  const TableOperation operation(ordinal_, table);
  run_constrain(table.weights.as<float>(), table.input_dim, table.dim, constraint.kind,
                static_cast<float>(constraint.max_value), active_stream());
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

double CudaBackend::penalty(const detail::StoredRows& rows, std::int64_t count, double l1, double l2) {
  const CheckedDeviceScope scope(ordinal_, active_stream());
  const float* weights = rows.as<float>();
  const std::int64_t chunks = detail::penalty_chunks(count);
  detail::DeviceBuffer partials = allocate(static_cast<std::size_t>(chunks) * sizeof(double), "penalty partials");
  run_penalty_chunks(weights, count, l1, l2, partials.as<double>(), active_stream());
  std::vector<double> host(static_cast<std::size_t>(chunks));
  copy_to_host(host.data(), partials.as<void>(), host.size() * sizeof(double));
  double total = 0.0;
  for (const double p : host) total += p;  // in chunk order, as the CPU adds them
  return total;
}

}  // namespace embedkit::kernels
