#pragma once
// The table operations for backends whose memory the host can address: the OpenMP kernels of cpu/.
// CpuBackend uses them on host memory; SimDeviceBackend on its simulated device memory, after
// checking that every pointer really is device memory.

#include "backend/backend.hpp"
#include "segments.hpp"

namespace embedkit::detail {

class HostOpsBackend : public Backend, public FusedStep {
 public:
  FusedStep* fused_step() override { return this; }
  void fill_initial(const StoredRows& weights, std::int64_t rows, std::int64_t dim, const InitSampler& sampler,
                    std::uint64_t seed) override;
  void fill(float* data, std::int64_t count, float value) override;
  void gather(const TableView& table, const DeviceIds& ids, float* out, IdCheck* check) override;
  void pooled(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets, std::int64_t bags,
              const float* sample_weights, PoolingMode mode, float* out, IdCheck* check) override;
  FoldedGrad fold_lookup_grad(const TableView& table, const DeviceIds& ids, const float* grad_out,
                              IdCheck* check) override;
  FoldedGrad fold_pooled_grad(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                              std::int64_t bags, const float* sample_weights, PoolingMode mode, const float* grad_bags,
                              IdCheck* check) override;
  /// The fused step on the CPU: each row is folded into a thread's scratch row, judged and applied
  /// there, so the sparse gradient is never written out nor read back. Offered by CpuBackend.
  std::int64_t fold_and_apply(const TableView& table, const DeviceIds& ids, const float* grad_rows, StepPlan plan,
                              bool skip_nonfinite, IdCheck* check) override;
  std::int64_t fold_pooled_and_apply(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                                     std::int64_t bags, const float* sample_weights, PoolingMode mode,
                                     const float* grad_bags, StepPlan plan, bool skip_nonfinite,
                                     IdCheck* check) override;
  std::int64_t mark_nonfinite(const FoldedGrad& grad, std::int64_t dim, std::uint8_t* skip) override;
  std::int64_t apply(const TableView& table, const FoldedGrad& grad, const std::uint8_t* skip, StepPlan plan) override;
  std::int64_t first_rejected_update(const TableView& table, const FoldedGrad& grad, const std::uint8_t* skip,
                                     StepPlan plan) override;
  /// Each distinct in-range id once (cpu::group_positions' unique ids), then cpu::renorm_rows.
  void renorm_rows(const TableView& table, const DeviceIds& ids, double max_norm, double norm_type) override;
  void constrain_all(const TableView& table, const Constraint& constraint) override;
  double penalty(const StoredRows& weights, std::int64_t count, double l1, double l2) override;

 protected:
  /// Called with every pointer an operation is given; a device backend throws when one is not its
  /// memory (a host pointer where a device pointer belongs). Nothing to check for the CPU.
  virtual void expect_device_memory(const void* data, std::size_t bytes, std::string_view what) const = 0;

 private:
  void expect_table(const TableView& table) const;
  void expect_lookup_grad(const TableView& table, const DeviceIds& ids, const float* grad_out) const;
  void expect_pooled_grad(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets, std::int64_t bags,
                          const float* sample_weights, const float* grad_bags) const;
  /// A sparse gradient of the segments' ids with room for their rows, in this backend's memory:
  /// the fold writes its rows there directly.
  FoldedGrad folded(const cpu::Segments& segments, std::int64_t dim);
};

}  // namespace embedkit::detail
