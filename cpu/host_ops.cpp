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

// Calls body with the ids typed.
template <class Body>
decltype(auto) with_typed(const DeviceIds& ids, Body&& body) {
  if (ids.type == IndexType::int32) return body(static_cast<const std::int32_t*>(ids.data));
  return body(static_cast<const std::int64_t*>(ids.data));
}

class CpuHostOps final : public HostOps {
 public:
  IdCheck scan_ids(const DeviceIds& ids, std::int64_t input_dim) override {
    return with_typed(ids, [&](const auto* typed) {
      IdCheck check;
      check.out_of_range = cpu::count_out_of_range(typed, ids.count, input_dim);
      if (check.out_of_range > 0) {
        check.first_position = cpu::first_out_of_range(typed, ids.count, input_dim);
        check.first_id = static_cast<std::int64_t>(typed[check.first_position]);
      }
      return check;
    });
  }
  void nonzero_mask(const DeviceIds& ids, std::uint8_t* mask) override {
    with_typed(ids, [&](const auto* typed) { cpu::nonzero_mask(typed, ids.count, mask); });
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
