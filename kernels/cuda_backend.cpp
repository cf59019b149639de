#include "cuda_backend.hpp"

#include <embedkit/status.hpp>

#include "cuda_allocator.hpp"
#include "cuda_try.hpp"
#include "fused_apply.hpp"
#include "gather.hpp"
#include "optimizer.hpp"
#include "pooled.hpp"
#include "sparse_grad.hpp"
#include "table_ops.hpp"

#include <algorithm>
#include <type_traits>
#include <vector>

#include <cstring>

namespace embedkit::kernels {
namespace {

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

CudaBackend::CudaBackend(int ordinal, bool kernels_enabled) : ordinal_(ordinal), kernels_enabled_(kernels_enabled) {
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
  void* data = cuda_allocate(bytes == 0 ? 1 : bytes, active_stream());
  if (data == nullptr) {
    throw Error(Status::out_of_memory,
                std::string(what) + ": allocating " + std::to_string(bytes) + " bytes on " + name() + " failed");
  }
  return detail::DeviceBuffer(this, data, bytes);
}

void CudaBackend::deallocate(void* data, std::size_t) noexcept {
  // Every operation ends by synchronising its stream, so no kernel still uses `data`.
  if (cudaSetDevice(ordinal_) == cudaSuccess) cuda_free(data, stream_);
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
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(destination, staging, bytes, cudaMemcpyHostToDevice, active_stream()));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

void CudaBackend::copy_to_host(void* host, const void* source, std::size_t bytes) {
  if (bytes == 0) return;
  DeviceScope scope(ordinal_);
  std::lock_guard lock(staging_mutex_);
  void* staging = pinned(bytes);
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(staging, source, bytes, cudaMemcpyDeviceToHost, active_stream()));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
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

namespace {

// The stream an operation runs on while it runs: the table's caller-owned stream, if it has one.
thread_local cudaStream_t operation_stream = nullptr;

// Sets the operation's stream for its length.
class OperationStream {
 public:
  explicit OperationStream(void* stream) : previous_(operation_stream) {
    operation_stream = static_cast<cudaStream_t>(stream);
  }
  ~OperationStream() { operation_stream = previous_; }
  OperationStream(const OperationStream&) = delete;
  OperationStream& operator=(const OperationStream&) = delete;

 private:
  cudaStream_t previous_;
};

// Typed device ids, as the kernels take them.
template <class Body>
decltype(auto) with_device_ids(const detail::DeviceIds& ids, Body&& body) {
  if (ids.type == IndexType::int32) return body(static_cast<const std::int32_t*>(ids.data));
  return body(static_cast<const std::int64_t*>(ids.data));
}

// The kernels' view of what a step does to each row it updates.
RowStep row_step(const detail::TableView& table, const detail::StepPlan& plan) {
  return RowStep{table.weights, table.slot0, table.slot1, table.dim, plan.kind, plan.scalars, plan.constraint.kind,
                 static_cast<float>(plan.constraint.max_value)};
}

// The sparse gradient pipeline's scratch, held until the folded rows are copied out.
struct Scratch {
  detail::Backend* backend;
  std::vector<detail::DeviceBuffer> buffers;
  static void* allocate(std::size_t bytes, void* context) {
    auto* self = static_cast<Scratch*>(context);
    self->buffers.push_back(self->backend->allocate(bytes, "sparse gradient workspace"));
    return self->buffers.back().as<void>();
  }
};

}  // namespace

void CudaBackend::fill_initial(float* weights, std::int64_t rows, std::int64_t dim, const detail::InitSampler& sampler,
                               std::uint64_t seed) {
  DeviceScope scope(ordinal_);
  run_fill_initial(FillInitialArgs{weights, rows, dim, sampler, seed}, active_stream());
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

void CudaBackend::fill(float* data, std::int64_t count, float value) {
  DeviceScope scope(ordinal_);
  run_fill(FillArgs{data, count, value}, active_stream());
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

void CudaBackend::gather(const detail::TableView& table, const detail::DeviceIds& ids, float* out) {
  DeviceScope scope(ordinal_);
  const OperationStream on(table.stream);
  detail::DeviceBuffer flag = allocate(sizeof(unsigned int), "gather flag");
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(flag.as<void>(), 0, sizeof(unsigned int), active_stream()));
  with_device_ids(ids, [&](const auto* typed) {
    run_gather(table.weights, table.input_dim, table.dim, typed, ids.count, table.padding_idx, out,
               flag.as<unsigned int>(), active_stream());
  });
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));  // the ids were checked on the host: the flag is not read
}

void CudaBackend::pooled(const detail::TableView& table, const detail::DeviceIds& ids, const std::int64_t* offsets,
                         std::int64_t bags, const float* sample_weights, PoolingMode mode, float* out) {
  DeviceScope scope(ordinal_);
  with_device_ids(ids, [&](const auto* typed) {
    run_pooled(table.weights, table.input_dim, table.dim, typed, offsets, bags, sample_weights, mode,
               table.padding_idx, out, active_stream());
  });
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

cudaStream_t CudaBackend::active_stream() const { return operation_stream != nullptr ? operation_stream : stream_; }

detail::FoldedGrad CudaBackend::fold(const detail::TableView& table, const detail::DeviceIds& ids, const float* rows) {
  Scratch scratch{this, {}};
  const DeviceAllocator allocator{&Scratch::allocate, &scratch};
  const FoldOutput folded = with_device_ids(ids, [&](const auto* typed) {
    return run_fold(typed, ids.count, table.input_dim, table.padding_idx, rows, table.dim, allocator, active_stream());
  });
  detail::FoldedGrad grad;
  grad.count = folded.count;
  grad.ids = allocate(static_cast<std::size_t>(folded.count) * sizeof(std::int64_t), "sparse gradient ids");
  grad.rows = allocate(static_cast<std::size_t>(folded.count * table.dim) * sizeof(float), "sparse gradient rows");
  if (folded.count > 0) {
    EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(grad.ids.as<void>(), folded.ids, grad.ids.bytes(), cudaMemcpyDeviceToDevice, active_stream()));
    EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(grad.rows.as<void>(), folded.rows, grad.rows.bytes(), cudaMemcpyDeviceToDevice, active_stream()));
  }
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
  return grad;
}

detail::FoldedGrad CudaBackend::fold_lookup_grad(const detail::TableView& table, const detail::DeviceIds& ids,
                                                 const float* grad_out) {
  DeviceScope scope(ordinal_);
  const OperationStream on(table.stream);
  return fold(table, ids, grad_out);
}

detail::FoldedGrad CudaBackend::fold_pooled_grad(const detail::TableView& table, const detail::DeviceIds& ids,
                                                 const std::int64_t* offsets, std::int64_t bags,
                                                 const float* sample_weights, PoolingMode mode, const float* grad_bags) {
  DeviceScope scope(ordinal_);
  const OperationStream on(table.stream);
  const detail::DeviceBuffer rows = entry_rows(table, ids, offsets, bags, sample_weights, mode, grad_bags);
  return fold(table, ids, rows.as<float>());
}

detail::DeviceBuffer CudaBackend::entry_rows(const detail::TableView& table, const detail::DeviceIds& ids,
                                             const std::int64_t* offsets, std::int64_t bags,
                                             const float* sample_weights, PoolingMode mode, const float* grad_bags) {
  detail::DeviceBuffer rows =
      allocate(static_cast<std::size_t>(ids.count * table.dim) * sizeof(float), "pooled gradient rows");
  with_device_ids(ids, [&](const auto* typed) {
    using Index = std::remove_cv_t<std::remove_pointer_t<decltype(typed)>>;
    run_entry_rows(EntryRowsArgs<Index>{table.weights, table.input_dim, table.dim, typed, offsets, bags,
                                        sample_weights, mode, table.padding_idx, grad_bags, rows.as<float>()},
                   active_stream());
  });
  return rows;
}

std::int64_t CudaBackend::mark_nonfinite(const detail::FoldedGrad& grad, std::int64_t dim, std::uint8_t* skip) {
  DeviceScope scope(ordinal_);
  run_nonfinite(NonFiniteArgs{grad.rows.as<const float>(), grad.count, dim, skip}, active_stream());
  std::vector<std::uint8_t> flags(static_cast<std::size_t>(grad.count));
  copy_to_host(flags.data(), skip, flags.size());
  return std::count(flags.begin(), flags.end(), std::uint8_t{2});
}

void CudaBackend::apply(const detail::TableView& table, const detail::FoldedGrad& grad, const std::uint8_t* skip,
                        const detail::StepPlan& plan) {
  DeviceScope scope(ordinal_);
  const OperationStream on(table.stream);
  const ApplyArgs args{row_step(table, plan), grad.ids.as<const std::int64_t>(), grad.rows.as<const float>(), skip,
                       grad.count, plan.dense, plan.row_begin, plan.row_end, table.padding_idx};
  run_apply(args, plan.dense ? plan.row_end - plan.row_begin : grad.count, active_stream());
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

bool CudaBackend::fuses_steps(std::int64_t dim) const { return fits_fused(dim); }

std::int64_t CudaBackend::fold_and_apply(const detail::TableView& table, const detail::DeviceIds& ids,
                                         const float* grad_rows, const detail::StepPlan& plan, bool skip_nonfinite) {
  DeviceScope scope(ordinal_);
  const OperationStream on(table.stream);
  return fused_step(table, ids, grad_rows, plan, skip_nonfinite);
}

std::int64_t CudaBackend::fold_pooled_and_apply(const detail::TableView& table, const detail::DeviceIds& ids,
                                                const std::int64_t* offsets, std::int64_t bags,
                                                const float* sample_weights, PoolingMode mode, const float* grad_bags,
                                                const detail::StepPlan& plan, bool skip_nonfinite) {
  DeviceScope scope(ordinal_);
  const OperationStream on(table.stream);
  // The entry rows read the weights before the step changes them: the same stream orders the two.
  const detail::DeviceBuffer rows = entry_rows(table, ids, offsets, bags, sample_weights, mode, grad_bags);
  return fused_step(table, ids, rows.as<float>(), plan, skip_nonfinite);
}

std::int64_t CudaBackend::fused_step(const detail::TableView& table, const detail::DeviceIds& ids, const float* rows,
                                     const detail::StepPlan& plan, bool skip_nonfinite) {
  Scratch scratch{this, {}};
  const DeviceAllocator allocator{&Scratch::allocate, &scratch};
  const FoldPieces pieces = with_device_ids(ids, [&](const auto* typed) {
    return run_fold_pieces(typed, ids.count, table.input_dim, table.padding_idx, rows, table.dim, allocator,
                           active_stream());
  });
  // The step's last allocation: the table is untouched until it has succeeded.
  detail::DeviceBuffer skipped = allocate(sizeof(unsigned long long), "fused step counter");
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(skipped.as<void>(), 0, sizeof(unsigned long long), active_stream()));
  run_fused_apply(FusedApplyArgs{row_step(table, plan), pieces.ids, pieces.first_piece, pieces.runs, pieces.piece_sums,
                                 skip_nonfinite, skipped.as<unsigned long long>()},
                  active_stream());
  unsigned long long count = 0;
  copy_to_host(&count, skipped.as<void>(), sizeof count);  // waits for the step, before the scratch goes
  return static_cast<std::int64_t>(count);
}

void CudaBackend::constrain_all(const detail::TableView& table, const Constraint& constraint) {
  DeviceScope scope(ordinal_);
  const OperationStream on(table.stream);
  run_constrain(table.weights, table.input_dim, table.dim, constraint.kind, static_cast<float>(constraint.max_value),
                active_stream());
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(active_stream()));
}

double CudaBackend::penalty(const float* weights, std::int64_t count, double l1, double l2) {
  DeviceScope scope(ordinal_);
  const std::int64_t chunks = (count + kPenaltyChunk - 1) / kPenaltyChunk;
  detail::DeviceBuffer partials = allocate(static_cast<std::size_t>(chunks) * sizeof(double), "penalty partials");
  run_penalty_chunks(weights, count, l1, l2, partials.as<double>(), active_stream());
  std::vector<double> host(static_cast<std::size_t>(chunks));
  copy_to_host(host.data(), partials.as<void>(), host.size() * sizeof(double));
  double total = 0.0;
  for (const double p : host) total += p;  // in chunk order, as the CPU adds them
  return total;
}

}  // namespace embedkit::kernels
