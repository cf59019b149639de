// The placement decision for each policy and what the device probe found.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "src/dispatch/placement.hpp"

namespace {

using embedkit::DeviceKind;
using embedkit::Error;
using embedkit::PlacementPolicy;
using embedkit::PlacementReason;
using embedkit::Status;
using embedkit::detail::CudaProbe;
using embedkit::detail::decide_placement;

const CudaProbe kCpuOnlyBuild{};
const CudaProbe kNoDevice{true, 0, "cudaErrorNoDevice: no CUDA-capable device is detected", ""};
const CudaProbe kOldDriver{true, 0, "cudaErrorInsufficientDriver: CUDA driver version is insufficient", ""};
const CudaProbe kDevice{true, 1, "", "NVIDIA H100 80GB HBM3"};

embedkit::ByteBreakdown bytes() {
  embedkit::ByteBreakdown b;
  b.weights = 4000;
  return b;
}

TEST(Placement, CpuPolicyAlwaysCpu) {
  for (const CudaProbe& probe : {kCpuOnlyBuild, kNoDevice, kDevice}) {
    const auto decision = decide_placement(PlacementPolicy::cpu, bytes(), probe);
    EXPECT_EQ(decision.device, DeviceKind::cpu);
    EXPECT_EQ(decision.reason_code, PlacementReason::cpu_requested);
    EXPECT_EQ(decision.bytes.weights, 4000u);
  }
}

TEST(Placement, AutoExplainsWhyCpu) {
  auto decision = decide_placement(PlacementPolicy::automatic, bytes(), kCpuOnlyBuild);
  EXPECT_EQ(decision.reason_code, PlacementReason::cuda_not_built);
  EXPECT_EQ(decision.device_name(), "cpu");
  decision = decide_placement(PlacementPolicy::automatic, bytes(), kOldDriver);
  EXPECT_EQ(decision.reason_code, PlacementReason::no_cuda_device);
  EXPECT_NE(decision.reason.find("cudaErrorInsufficientDriver"), std::string::npos);
  decision = decide_placement(PlacementPolicy::automatic, bytes(), kDevice);
  EXPECT_EQ(decision.reason_code, PlacementReason::cuda_backend_not_implemented);
  EXPECT_NE(decision.reason.find("NVIDIA H100"), std::string::npos);
  EXPECT_EQ(decision.device, DeviceKind::cpu);
}

TEST(Placement, ForcedCudaIsAClearError) {
  for (const CudaProbe& probe : {kCpuOnlyBuild, kNoDevice, kDevice}) {
    try {
      decide_placement(PlacementPolicy::cuda, bytes(), probe);
      FAIL();
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::unsupported);
      EXPECT_NE(std::string(e.what()).find("placement 'cuda' was requested"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find("use placement 'auto' or 'cpu'"), std::string::npos);
    }
  }
}

TEST(Placement, TableRecordsItsDecision) {
  embedkit::TableConfig config;
  config.input_dim = 10;
  config.output_dim = 4;
  const embedkit::EmbeddingTable table(config);
  EXPECT_EQ(table.placement().device, DeviceKind::cpu);
  EXPECT_EQ(table.placement().bytes.weights, 160u);
  EXPECT_FALSE(table.placement().reason.empty());
  config.placement = PlacementPolicy::cuda;  // no machine here has a usable CUDA device
  EXPECT_THROW(embedkit::EmbeddingTable{config}, Error);
}

TEST(Placement, OutOfMemoryIsCheckedBeforeAllocating) {
  embedkit::TableConfig config;
  config.input_dim = std::int64_t{1} << 40;  // 4 PiB of weights at dim 1024
  config.output_dim = 1024;
  try {
    embedkit::EmbeddingTable table(config);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_memory);
    EXPECT_NE(std::string(e.what()).find("of host memory is available"), std::string::npos) << e.what();
  }
  config.input_dim = std::numeric_limits<std::int64_t>::max();
  EXPECT_THROW(embedkit::EmbeddingTable{config}, Error);
}

}  // namespace
