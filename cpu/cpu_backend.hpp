#pragma once
// Host memory and the OpenMP kernels: where a table lives when it is not on a device.

#include "host_ops_backend.hpp"

namespace embedkit::detail {

class CpuBackend final : public HostOpsBackend {
 public:
  /// The process's one CPU backend.
  static CpuBackend& instance();

  std::string name() const override { return "cpu"; }
  DeviceKind kind() const override { return DeviceKind::cpu; }
  MemoryInfo memory_info() const override;
  bool host_accessible() const override { return true; }
  BackendCapabilities capabilities() const override {
    return {.kernels_verified = true, .checks_ids = false, .narrow_rows = true};
  }
  DeviceBuffer allocate(std::size_t bytes, std::string_view what) override;
  void deallocate(void* data, std::size_t bytes) noexcept override;
  void copy_from_host(void* destination, const void* host, std::size_t bytes) override;
  void copy_to_host(void* host, const void* source, std::size_t bytes) override;
  bool owns(const void*, std::size_t) const override { return true; }
  /// Every row width: the fused step folds each row into a scratch row of its thread, so unlike
  /// the CUDA one it has no register budget to fit.
  bool fuses(std::int64_t) const override { return true; }

 protected:
  void expect_device_memory(const void*, std::size_t, std::string_view) const override {}
};

}  // namespace embedkit::detail
