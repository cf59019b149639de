// HostOps by the CPU's loops: the table layer's work on host memory (backend/host_ops.hpp).
#include "backend/backends.hpp"
#include "cpu_backend.hpp"
#include "index_scan.hpp"
#include "mask.hpp"
#include "optimizer_apply.hpp"
#include "pooled.hpp"
#include "pooled_backward.hpp"

namespace embedkit::detail {
namespace {

class CpuHostOps final : public HostOps {
 public:
  IdCheck scan_ids(const DeviceIds& ids, std::int64_t input_dim) override {
    return with_ids(ids, [&](const auto* typed) { return cpu::scan_ids(typed, ids.count, input_dim); });
  }
  void nonzero_mask(const DeviceIds& ids, std::uint8_t* mask) override {
    with_ids(ids, [&](const auto* typed) { cpu::nonzero_mask(typed, ids.count, mask); });
  }
  void constrain_row(float* row, std::int64_t dim, const Constraint& constraint) override {
    cpu::constrain_row(row, dim, constraint);
  }
  void pooled(const HostRows& rows, const PooledBatch<std::int32_t>& batch, float* out) override {
    cpu::pooled_lookup(rows.data, rows.count, rows.dim, batch, out);
  }
  void pooled(const HostRows& rows, const PooledBatch<std::int64_t>& batch, float* out) override {
    cpu::pooled_lookup(rows.data, rows.count, rows.dim, batch, out);
  }
  void pooled_many(std::span<const PooledJob<std::int32_t>> jobs) override { cpu::pooled_lookup_many(jobs); }
  void pooled_many(std::span<const PooledJob<std::int64_t>> jobs) override { cpu::pooled_lookup_many(jobs); }
  void pooled_entry_scales(const PooledBatch<std::int32_t>& batch, float* scales, std::int64_t* bag_of) override {
    cpu::pooled_entry_scales(batch, scales, bag_of);
  }
  void pooled_entry_scales(const PooledBatch<std::int64_t>& batch, float* scales, std::int64_t* bag_of) override {
    cpu::pooled_entry_scales(batch, scales, bag_of);
  }
  void pooled_argmax(const HostRows& rows, const PooledBatch<std::int32_t>& batch, std::int64_t* argmax) override {
    cpu::pooled_argmax(rows.data, rows.count, rows.dim, batch, argmax);
  }
  void pooled_argmax(const HostRows& rows, const PooledBatch<std::int64_t>& batch, std::int64_t* argmax) override {
    cpu::pooled_argmax(rows.data, rows.count, rows.dim, batch, argmax);
  }
};

}  // namespace

Backend& cpu_backend() { return CpuBackend::instance(); }

HostOps& host_ops() {
  static CpuHostOps ops;
  return ops;
}

}  // namespace embedkit::detail
