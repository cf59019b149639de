#pragma once
// The backends a table can be placed on here, for the value-parametrized conformance suites
// (tests/conformance/): the CPU and the simulated device in backend_test; CUDA device 0 in gpu_test
// (built with EMBEDKIT_CONFORMANCE_CUDA=1 where the library has CUDA), skipped with the runtime's
// reason when no device is usable, and failed instead under EMBEDKIT_REQUIRE_GPU=1.
//
// A suite derives its fixture from OnBackend and instantiates it over present_backends(), named by
// backend_name: Lookup/OnBackend.Duplicates/sim.

#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "sim/sim_device_backend.hpp"
#include "src/placement/context_impl.hpp"
#include "tests/support/tables.hpp"

#if EMBEDKIT_CONFORMANCE_CUDA
#include "kernels/cuda_backend.hpp"
#include "tests/support/gpu_device.hpp"
#endif

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace embedkit::testing {

/// One backend under test: how to make a Context whose tables go there, and whether it can run here.
struct BackendCase {
  std::string name;    // the test-name suffix: "cpu", "sim", "cuda"
  std::string device;  // what a table placed there reports as placement().device_name()
  std::unique_ptr<Context> (*make_context)() = nullptr;
  PlacementPolicy placement = PlacementPolicy::cpu;
  std::string unavailable;  // why it cannot run on this machine; "" when it can
  bool required = false;    // whether `unavailable` is a failure rather than a skip
};

/// A context without a device: every table of it is on the CPU.
inline std::unique_ptr<Context> cpu_only_context() {
  return std::make_unique<Context>(std::make_unique<Context::Impl>());
}

/// A context whose device is a simulated one large enough for every conformance table.
inline std::unique_ptr<Context> sim_device_context() {
  auto impl = std::make_unique<Context::Impl>();
  impl->built_with_cuda = true;
  impl->device = std::make_unique<detail::SimDeviceBackend>(std::uint64_t{1} << 32);
  return std::make_unique<Context>(std::move(impl));
}

#if EMBEDKIT_CONFORMANCE_CUDA
/// CUDA device 0 with its table kernels enabled (placement's opt-in gate is not what is tested).
inline std::unique_ptr<Context> cuda_device_context() {
  auto impl = std::make_unique<Context::Impl>();
  impl->built_with_cuda = true;
  impl->device = std::make_unique<kernels::CudaBackend>(0, true);
  return std::make_unique<Context>(std::move(impl));
}

#endif

/// The backends of this test program.
inline std::vector<BackendCase> present_backends() {
#if EMBEDKIT_CONFORMANCE_CUDA
  // gpu_test: CUDA alone (backend_test runs the CPU and the simulated device).
  return {BackendCase{"cuda", "cuda:0", &cuda_device_context, PlacementPolicy::cuda, cuda_device_unusable_reason(),
                      gpu_required()}};
#else
  return {BackendCase{"cpu", "cpu", &cpu_only_context, PlacementPolicy::cpu, "", false},
          BackendCase{"sim", "sim:0", &sim_device_context, PlacementPolicy::cuda, "", false}};
#endif
}

/// GoogleTest prints a backend by its name.
inline void PrintTo(const BackendCase& backend, std::ostream* out) { *out << backend.name; }

/// Names each instance by its backend.
inline std::string backend_name(const ::testing::TestParamInfo<BackendCase>& info) { return info.param.name; }

/// A test on one backend: tables made by on_backend() are placed there (and checked to be), tables
/// made by on_cpu() are the same tables on the CPU, the bitwise baseline.
class OnBackend : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    const BackendCase& backend = GetParam();
    if (!backend.unavailable.empty()) {
      if (backend.required) FAIL() << "EMBEDKIT_REQUIRE_GPU=1, but " << backend.unavailable;
      GTEST_SKIP() << backend.unavailable;
    }
    context_ = backend.make_context();
    cpu_context_ = cpu_only_context();
  }
  void TearDown() override {
    // Tables must not outlive their context: tests hold theirs in locals, gone before this runs.
    context_.reset();
    cpu_context_.reset();
  }

  EmbeddingTable on_backend(TableConfig config) {
    config.placement = GetParam().placement;
    config.gpu_memory_headroom = 0;
    EmbeddingTable table(std::move(config), *context_);
    EXPECT_EQ(table.placement().device_name(), GetParam().device) << table.placement().reason;
    return table;
  }
  EmbeddingTable on_cpu(TableConfig config) {
    config.placement = PlacementPolicy::cpu;
    return EmbeddingTable(std::move(config), *cpu_context_);
  }
  /// The context of the backend under test (for a backend's own counters).
  Context& context() { return *context_; }

 private:
  std::unique_ptr<Context> context_;
  std::unique_ptr<Context> cpu_context_;
};

}  // namespace embedkit::testing
