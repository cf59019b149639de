#include "sim_device_backend.hpp"

#include <embedkit/status.hpp>
#include <embedkit/summary.hpp>

#include "backend/workspace.hpp"
#include "kernels/fold_workspace.hpp"
#include "kernels/fused_apply_kernel.hpp"
#include "kernels/renorm_kernel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace embedkit::detail {
namespace {

struct SimTableResources final : TableResources {
  std::mutex mutex;  // one fold at a time uses the workspace
  Workspace workspace;
};

// The workspace the CUDA fold lays out for this batch, CUB's sort scratch modelled as its
// alternate keys and values (16 bytes a position); the other CUB steps need less.
std::size_t fold_workspace_bytes(std::int64_t count, std::int64_t dim) {
  const auto sort = static_cast<std::size_t>(count) * 16;
  return kernels::plan_fold_workspace(count, dim, kernels::FoldCubBytes{sort, 0, 0}).bytes;
}

}  // namespace

SimDeviceBackend::SimDeviceBackend(std::uint64_t capacity, int ordinal) : capacity_(capacity), ordinal_(ordinal) {}

SimDeviceBackend::~SimDeviceBackend() {
  for (const auto& [start, bytes] : blocks_) std::free(reinterpret_cast<void*>(start));
}

MemoryInfo SimDeviceBackend::memory_info() const {
  std::lock_guard lock(mutex_);
  return {capacity_ - used_, capacity_};
}

DeviceBuffer SimDeviceBackend::allocate(std::size_t bytes, std::string_view what) {
  std::lock_guard lock(mutex_);
  ++allocations_;
  if (fail_at_ && allocations_ == *fail_at_) {
    fail_at_.reset();
    throw Error(Status::out_of_memory, fmt::format("{}: allocating {} on {} failed (injected fault at allocation {})",
                                                   what, format_bytes(bytes), name(), allocations_));
  }
  if (bytes > capacity_ - used_) {
    throw Error(Status::out_of_memory,
                fmt::format("{}: allocating {} on {} failed: {} of {} free", what, format_bytes(bytes), name(),
                            format_bytes(capacity_ - used_), format_bytes(capacity_)));
  }
  // Real heap memory, so tools like AddressSanitizer see misuse; at least one byte, so every
  // buffer has an address of its own.
  void* data = std::malloc(bytes == 0 ? 1 : bytes);
  if (data == nullptr)
    throw Error(Status::out_of_memory, fmt::format("{}: host memory behind {} ran out", what, name()));
  blocks_[reinterpret_cast<std::uintptr_t>(data)] = bytes;
  used_ += bytes;
  return DeviceBuffer(this, data, bytes);
}

void SimDeviceBackend::deallocate(void* data, std::size_t bytes) noexcept {
  std::lock_guard lock(mutex_);
  if (blocks_.erase(reinterpret_cast<std::uintptr_t>(data)) != 0) used_ -= bytes;
  std::free(data);
}

bool SimDeviceBackend::owns(const void* data, std::size_t bytes) const {
  std::lock_guard lock(mutex_);
  const auto address = reinterpret_cast<std::uintptr_t>(data);
  auto block = blocks_.upper_bound(address);
  if (block == blocks_.begin()) return false;
  --block;
  return address - block->first + bytes <= std::max<std::size_t>(block->second, 1);
}

void SimDeviceBackend::expect_device_memory(const void* data, std::size_t bytes, std::string_view what) const {
  if (bytes == 0 || owns(data, bytes)) return;
  throw Error(Status::internal, fmt::format("{} passed to {} is not {} memory (a host pointer where a device pointer "
                                            "belongs)",
                                            what, name(), name()));
}

void SimDeviceBackend::copy_from_host(void* destination, const void* host, std::size_t bytes) {
  expect_device_memory(destination, bytes, "copy destination");
  if (bytes > 0) std::memcpy(destination, host, bytes);
  std::lock_guard lock(mutex_);
  to_device_ += bytes;
}

void SimDeviceBackend::copy_to_host(void* host, const void* source, std::size_t bytes) {
  expect_device_memory(source, bytes, "copy source");
  if (bytes > 0) std::memcpy(host, source, bytes);
  std::lock_guard lock(mutex_);
  to_host_ += bytes;
}

bool SimDeviceBackend::fuses(std::int64_t dim) const {
  std::lock_guard lock(mutex_);
  return fused_offered_ && kernels::fits_fused(dim);
}

std::int64_t SimDeviceBackend::fold_and_apply(const TableView& table, const DeviceIds& ids, const float* grad_rows,
                                              StepPlan plan, bool skip_nonfinite, IdCheck* check) {
  const FoldedGrad grad = fold_lookup_grad(table, ids, grad_rows, check);
  if (check != nullptr && check->out_of_range > 0) return 0;  // reported; nothing applied
  return apply_fused(table, grad, plan, skip_nonfinite);
}

std::int64_t SimDeviceBackend::fold_pooled_and_apply(const TableView& table, const DeviceIds& ids,
                                                     const std::int64_t* offsets, std::int64_t bags,
                                                     const float* sample_weights, PoolingMode mode,
                                                     const float* grad_bags, StepPlan plan, bool skip_nonfinite,
                                                     IdCheck* check) {
  const FoldedGrad grad = fold_pooled_grad(table, ids, offsets, bags, sample_weights, mode, grad_bags, check);
  if (check != nullptr && check->out_of_range > 0) return 0;
  return apply_fused(table, grad, plan, skip_nonfinite);
}

std::int64_t SimDeviceBackend::apply_fused(const TableView& table, const FoldedGrad& grad, StepPlan plan,
                                           bool skip_nonfinite) {
  const auto rows = static_cast<std::size_t>(grad.count);
  const DeviceBuffer skip = allocate(std::max<std::size_t>(rows, 1), "fused step flags");
  std::memset(skip.as<void>(), 0, rows);
  // Every allocation has succeeded: from here on nothing fails, so the step is whole or absent.
  const std::int64_t nonfinite = skip_nonfinite ? mark_nonfinite(grad, table.dim, skip.as<std::uint8_t>()) : 0;
  const std::int64_t skipped = nonfinite + apply(table, grad, skip.as<const std::uint8_t>(), plan);
  std::lock_guard lock(mutex_);
  ++fused_steps_;
  return skipped;
}

void SimDeviceBackend::offer_fused_steps(bool offered) {
  std::lock_guard lock(mutex_);
  fused_offered_ = offered;
}

std::int64_t SimDeviceBackend::fused_steps() const {
  std::lock_guard lock(mutex_);
  return fused_steps_;
}

void SimDeviceBackend::fail_allocation_in(std::int64_t n) {
  std::lock_guard lock(mutex_);
  fail_at_ = allocations_ + n;
}

std::int64_t SimDeviceBackend::allocations() const {
  std::lock_guard lock(mutex_);
  return allocations_;
}

std::uint64_t SimDeviceBackend::used_bytes() const {
  std::lock_guard lock(mutex_);
  return used_;
}

std::uint64_t SimDeviceBackend::bytes_to_device() const {
  std::lock_guard lock(mutex_);
  return to_device_;
}

std::uint64_t SimDeviceBackend::bytes_to_host() const {
  std::lock_guard lock(mutex_);
  return to_host_;
}

std::unique_ptr<TableResources> SimDeviceBackend::open_table() { return std::make_unique<SimTableResources>(); }

FoldedGrad SimDeviceBackend::fold_lookup_grad(const TableView& table, const DeviceIds& ids, const float* grad_out,
                                              IdCheck* check) {
  auto& resources = dynamic_cast<SimTableResources&>(*table.resources);
  const std::lock_guard lock(resources.mutex);
  resources.workspace.reserve(*this, fold_workspace_bytes(ids.count, table.dim), "table workspace");
  return HostOpsBackend::fold_lookup_grad(table, ids, grad_out, check);
}

void SimDeviceBackend::renorm_rows(const TableView& table, const DeviceIds& ids, double max_norm, double norm_type) {
  if (ids.count == 0) return;
  auto& resources = dynamic_cast<SimTableResources&>(*table.resources);
  const std::lock_guard lock(resources.mutex);
  resources.workspace.reserve(
      *this, static_cast<std::size_t>(kernels::renorm_claim_words(table.input_dim)) * sizeof(unsigned int),
      "table workspace");
  HostOpsBackend::renorm_rows(table, ids, max_norm, norm_type);
}

FoldedGrad SimDeviceBackend::fold_pooled_grad(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                                              std::int64_t bags, const float* sample_weights, PoolingMode mode,
                                              const float* grad_bags, IdCheck* check) {
  auto& resources = dynamic_cast<SimTableResources&>(*table.resources);
  const std::lock_guard lock(resources.mutex);
  // As on CUDA: each entry's gradient row, then the fold's intermediates.
  const std::size_t rows = kernels::fold_align(static_cast<std::size_t>(ids.count * table.dim) * sizeof(float));
  resources.workspace.reserve(*this, rows + fold_workspace_bytes(ids.count, table.dim), "table workspace");
  return HostOpsBackend::fold_pooled_grad(table, ids, offsets, bags, sample_weights, mode, grad_bags, check);
}

}  // namespace embedkit::detail
