#pragma once
// A simulated device for tests: a backend with a fixed capacity that reports its free memory, keeps
// its buffers apart from host memory (every byte crosses through copy_from_host / copy_to_host, and
// an operation handed a pointer it did not allocate fails), can fail past capacity or at the Nth
// allocation on request, and runs the CPU kernels. It proves placement, fallback, chunking,
// migration and staging without a GPU. Tests select it explicitly; automatic placement never does.

#include "cpu/host_ops_backend.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

namespace embedkit::detail {

class SimDeviceBackend final : public HostOpsBackend {
 public:
  /// A device of `capacity` bytes named "sim:<ordinal>".
  explicit SimDeviceBackend(std::uint64_t capacity, int ordinal = 0);
  ~SimDeviceBackend() override;

  std::string name() const override { return "sim:" + std::to_string(ordinal_); }
  DeviceKind kind() const override { return DeviceKind::cuda; }
  MemoryInfo memory_info() const override;
  /// Like a device, it reports out-of-range ids from its operations (from the CPU's scan).
  bool host_accessible() const override { return false; }
  BackendCapabilities capabilities() const override {
    return {.kernels_verified = true, .checks_ids = true, .narrow_rows = true};
  }
  DeviceBuffer allocate(std::size_t bytes, std::string_view what) override;
  void deallocate(void* data, std::size_t bytes) noexcept override;
  void copy_from_host(void* destination, const void* host, std::size_t bytes) override;
  void copy_to_host(void* host, const void* source, std::size_t bytes) override;
  bool owns(const void* data, std::size_t bytes) const override;
  /// A workspace per table, grown as the CUDA backend grows its own.
  std::unique_ptr<TableResources> open_table() override;
  /// The host fold, after reserving the workspace the CUDA fold of this batch lays out.
  FoldedGrad fold_lookup_grad(const TableView& table, const DeviceIds& ids, const float* grad_out,
                              IdCheck* check) override;
  FoldedGrad fold_pooled_grad(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                              std::int64_t bags, const float* sample_weights, PoolingMode mode, const float* grad_bags,
                              IdCheck* check) override;
  /// The host renorm, after reserving the claim bitmap the CUDA renorm keeps in the workspace.
  void renorm_rows(const TableView& table, const DeviceIds& ids, double max_norm, double norm_type) override;

  /// Offers fold_and_apply for rows that fit the CUDA fused step (kernels::fits_fused).
  bool fuses(std::int64_t dim) const override;
  /// The fused step's contract by the host kernels: the fold and the row flags allocated first, then
  /// the non-finite scan and the step, so it is bitwise the unfused step and the CPU's.
  std::int64_t fold_and_apply(const TableView& table, const DeviceIds& ids, const float* grad_rows, StepPlan plan,
                              bool skip_nonfinite, IdCheck* check) override;
  std::int64_t fold_pooled_and_apply(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                                     std::int64_t bags, const float* sample_weights, PoolingMode mode,
                                     const float* grad_bags, StepPlan plan, bool skip_nonfinite,
                                     IdCheck* check) override;

  /// Withdraws (false) or restores (true, the default) the fused step, for comparisons.
  void offer_fused_steps(bool offered);
  /// Fused steps completed so far.
  std::int64_t fused_steps() const;
  /// Fails the allocation that comes `n` allocations from now (1: the next one), once.
  void fail_allocation_in(std::int64_t n);
  /// Allocations made so far, successful or not.
  std::int64_t allocations() const;
  /// Bytes in use now.
  std::uint64_t used_bytes() const;
  /// Bytes copied host to device and device to host so far.
  std::uint64_t bytes_to_device() const;
  std::uint64_t bytes_to_host() const;

 protected:
  void expect_device_memory(const void* data, std::size_t bytes, std::string_view what) const override;

 private:
  // The rest of a fused step once `grad` is folded: its flags allocated, then the scan and the step.
  std::int64_t apply_fused(const TableView& table, const FoldedGrad& grad, StepPlan plan, bool skip_nonfinite);

  std::uint64_t capacity_;
  int ordinal_;
  mutable std::mutex mutex_;
  std::map<std::uintptr_t, std::size_t> blocks_;  // start -> bytes
  std::uint64_t used_ = 0;
  std::int64_t allocations_ = 0;
  std::optional<std::int64_t> fail_at_;
  std::uint64_t to_device_ = 0;
  std::uint64_t to_host_ = 0;
  bool fused_offered_ = true;
  std::int64_t fused_steps_ = 0;
};

}  // namespace embedkit::detail
