// The placement decision: device absent/present x fits/does not x budget cap x optimizer with and
// without a sparse kernel x policy auto/cpu/cuda, each with its device and reason code.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "src/placement/placement.hpp"
#include "tests/sim_context.hpp"

#include <cstdlib>
#include <string>

namespace {

using embedkit::DeviceKind;
using embedkit::Error;
using embedkit::PlacementPolicy;
using embedkit::PlacementReason;
using embedkit::Status;
using embedkit::detail::decide_placement;
using embedkit::detail::PlacementInputs;

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

struct Row {
  const char* name;
  bool built_with_cuda;
  bool device_present;
  std::uint64_t needed;  // bytes the table needs
  std::optional<std::uint64_t> limit;
  bool optimizer_kernel;
  PlacementPolicy policy;
  // expected:
  DeviceKind device;
  PlacementReason reason;       // when no error
  std::optional<Status> error;  // forced cuda failures
};

// A 10 GiB device with 8 GiB free: 1 GiB headroom by default, so 7 GiB usable.
const Row kTable[] = {
    {"cpu_policy_with_device",
     true,
     true,
     kGiB,
     {},
     true,
     PlacementPolicy::cpu,
     DeviceKind::cpu,
     PlacementReason::cpu_requested,
     {}},
    {"auto_not_built",
     false,
     false,
     kGiB,
     {},
     true,
     PlacementPolicy::automatic,
     DeviceKind::cpu,
     PlacementReason::cuda_not_built,
     {}},
    {"auto_no_device",
     true,
     false,
     kGiB,
     {},
     true,
     PlacementPolicy::automatic,
     DeviceKind::cpu,
     PlacementReason::no_cuda_device,
     {}},
    {"auto_fits",
     true,
     true,
     6 * kGiB,
     {},
     true,
     PlacementPolicy::automatic,
     DeviceKind::cuda,
     PlacementReason::fits_on_device,
     {}},
    {"auto_does_not_fit",
     true,
     true,
     8 * kGiB,
     {},
     true,
     PlacementPolicy::automatic,
     DeviceKind::cpu,
     PlacementReason::does_not_fit,
     {}},
    {"auto_over_budget",
     true,
     true,
     3 * kGiB,
     2 * kGiB,
     true,
     PlacementPolicy::automatic,
     DeviceKind::cpu,
     PlacementReason::does_not_fit,
     {}},
    {"auto_within_budget",
     true,
     true,
     2 * kGiB,
     2 * kGiB,
     true,
     PlacementPolicy::automatic,
     DeviceKind::cuda,
     PlacementReason::fits_on_device,
     {}},
    {"auto_host_optimizer",
     true,
     true,
     kGiB,
     {},
     false,
     PlacementPolicy::automatic,
     DeviceKind::cpu,
     PlacementReason::optimizer_has_no_cuda_kernel,
     {}},
    {"cuda_fits",
     true,
     true,
     kGiB,
     {},
     true,
     PlacementPolicy::cuda,
     DeviceKind::cuda,
     PlacementReason::fits_on_device,
     {}},
    {"cuda_not_built", false, false, kGiB, {}, true, PlacementPolicy::cuda, DeviceKind::cpu, {}, Status::unsupported},
    {"cuda_no_device", true, false, kGiB, {}, true, PlacementPolicy::cuda, DeviceKind::cpu, {}, Status::unsupported},
    {"cuda_does_not_fit",
     true,
     true,
     8 * kGiB,
     {},
     true,
     PlacementPolicy::cuda,
     DeviceKind::cpu,
     {},
     Status::out_of_memory},
    {"cuda_over_budget",
     true,
     true,
     3 * kGiB,
     2 * kGiB,
     true,
     PlacementPolicy::cuda,
     DeviceKind::cpu,
     {},
     Status::out_of_memory},
    {"cuda_host_optimizer",
     true,
     true,
     kGiB,
     {},
     false,
     PlacementPolicy::cuda,
     DeviceKind::cpu,
     {},
     Status::unsupported},
};

class PlacementTable : public ::testing::TestWithParam<Row> {};

TEST_P(PlacementTable, DeviceAndReason) {
  const Row& row = GetParam();
  PlacementInputs inputs;
  inputs.table_name = "t";
  inputs.policy = row.policy;
  inputs.bytes.weights = row.needed;
  inputs.optimizer_name = row.optimizer_kernel ? "adagrad" : "custom";
  inputs.optimizer_has_cuda_kernel = row.optimizer_kernel;
  inputs.built_with_cuda = row.built_with_cuda;
  if (row.device_present) inputs.device = embedkit::detail::DeviceFacts{"sim:0", true};
  inputs.no_device_reason =
      row.built_with_cuda ? "cudaErrorInsufficientDriver: CUDA driver version is insufficient" : "";
  inputs.device_memory = {8 * kGiB, 10 * kGiB};
  inputs.limit = row.limit;
  if (row.error) {
    try {
      decide_placement(inputs);
      FAIL() << "decided instead of failing";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), *row.error) << e.what();
      EXPECT_NE(std::string(e.what()).find("placement 'cuda' was requested by the config"), std::string::npos)
          << e.what();
    }
    return;
  }
  const auto decision = decide_placement(inputs);
  EXPECT_EQ(decision.device, row.device);
  EXPECT_EQ(decision.reason_code, row.reason) << decision.reason;
  EXPECT_EQ(decision.device_name(), row.device == DeviceKind::cuda ? "sim:0" : "cpu");
  EXPECT_FALSE(decision.reason.empty());
}

INSTANTIATE_TEST_SUITE_P(Cases, PlacementTable, ::testing::ValuesIn(kTable),
                         [](const ::testing::TestParamInfo<Row>& param_info) {
                           return std::string(param_info.param.name);
                         });

// The gate that keeps tables off a device whose CUDA kernels have not run on a GPU: its reason is
// named for what it is, and the old enumerator stays as a deprecated alias of it.
TEST(Placement, UnverifiedKernelsKeepTablesOffTheDeviceUnderAuto) {
  PlacementInputs inputs;
  inputs.table_name = "t";
  inputs.policy = PlacementPolicy::automatic;
  inputs.bytes.weights = kGiB;
  inputs.optimizer_name = "adagrad";
  inputs.optimizer_has_cuda_kernel = true;
  inputs.built_with_cuda = true;
  inputs.device = embedkit::detail::DeviceFacts{"cuda:0", false};
  inputs.device_memory = {8 * kGiB, 10 * kGiB};
  const auto decision = decide_placement(inputs);
  EXPECT_EQ(decision.device, DeviceKind::cpu);
  EXPECT_EQ(decision.reason_code, PlacementReason::cuda_kernels_unverified);
  EXPECT_STREQ(embedkit::to_string(decision.reason_code), "cuda_kernels_unverified");
  EXPECT_NE(decision.reason.find("EMBEDKIT_CUDA_TABLES=1"), std::string::npos) << decision.reason;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  EXPECT_EQ(PlacementReason::cuda_backend_not_implemented, PlacementReason::cuda_kernels_unverified);
#pragma GCC diagnostic pop
  inputs.policy = PlacementPolicy::cuda;
  try {
    decide_placement(inputs);
    FAIL() << "forced cuda placed a table on unverified kernels";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::unsupported) << e.what();
  }
}

TEST(Placement, ReasonSpellsOutTheArithmetic) {
  PlacementInputs inputs;
  inputs.table_name = "items";
  inputs.bytes.weights = 24 * kGiB;
  inputs.bytes.optimizer_state = 48 * kGiB;
  inputs.bytes.workspace = 3 * kGiB;
  inputs.optimizer_name = "adam";
  inputs.built_with_cuda = true;
  inputs.device = embedkit::detail::DeviceFacts{"sim:0", true};
  inputs.device_memory = {78 * kGiB, 80 * kGiB};
  const auto decision = decide_placement(inputs);
  EXPECT_EQ(decision.reason_code, PlacementReason::does_not_fit);
  EXPECT_EQ(decision.reason,
            "needs 75.0 GiB (weights 24.0 GiB + adam state 48.0 GiB + workspace 3.0 GiB), sim:0 usable 70.0 GiB "
            "(78.0 GiB free - 8.0 GiB headroom)");
  EXPECT_EQ(*decision.device_free_bytes, 78 * kGiB);
  EXPECT_EQ(*decision.device_usable_bytes, 70 * kGiB);
  // Earlier tables: their allocations are already out of `free`; their promised workspace is not.
  inputs.ledger = 60 * kGiB;
  inputs.promised = 2 * kGiB;
  inputs.bytes = {};
  inputs.bytes.weights = 69 * kGiB;
  EXPECT_NE(decide_placement(inputs).reason.find("- 2.0 GiB workspace promised to earlier tables"), std::string::npos);
  EXPECT_EQ(decide_placement(inputs).reason_code, PlacementReason::does_not_fit);  // 68 GiB usable
  inputs.bytes.weights = 68 * kGiB;
  EXPECT_EQ(decide_placement(inputs).reason_code, PlacementReason::fits_on_device);
  // The user's cap covers everything embedkit placed, allocated or promised.
  inputs.limit = 70 * kGiB;
  inputs.bytes.weights = 11 * kGiB;
  EXPECT_EQ(decide_placement(inputs).reason_code, PlacementReason::does_not_fit);
  EXPECT_NE(decide_placement(inputs).reason.find("gpu_memory_limit 70.0 GiB - 60.0 GiB placed by earlier tables"),
            std::string::npos);
}

// Where the storage type decides the placement, the sentence says so, both ways round: a bfloat16
// table that fits where float32 would not, and a float32 table that would fit as bfloat16.
TEST(Placement, ReasonSaysWhenTheStorageTypeDecides) {
  PlacementInputs inputs;
  inputs.table_name = "items";
  inputs.bytes.weights = 12 * kGiB;  // as bfloat16; 24 GiB as float32
  inputs.bytes.workspace = kGiB / 2;
  inputs.dtype = embedkit::DType::bfloat16;
  inputs.optimizer_name = "sgd";
  inputs.built_with_cuda = true;
  inputs.device = embedkit::detail::DeviceFacts{"sim:0", true, true};
  inputs.device_memory = {20 * kGiB, 20 * kGiB};
  inputs.headroom = 0;
  auto decision = decide_placement(inputs);
  EXPECT_EQ(decision.reason_code, PlacementReason::fits_on_device);
  EXPECT_NE(decision.reason.find("; fits on sim:0 as bfloat16 (12.5 GiB), not as float32 (24.5 GiB)"),
            std::string::npos)
      << decision.reason;
  inputs.dtype = embedkit::DType::float32;
  inputs.bytes.weights = 24 * kGiB;
  decision = decide_placement(inputs);
  EXPECT_EQ(decision.reason_code, PlacementReason::does_not_fit);
  EXPECT_NE(decision.reason.find("; fits on sim:0 as bfloat16 (12.5 GiB), not as float32 (24.5 GiB)"),
            std::string::npos)
      << decision.reason;
  // Both fit, or neither: nothing to add.
  inputs.device_memory = {30 * kGiB, 30 * kGiB};
  EXPECT_EQ(decide_placement(inputs).reason.find("fits on sim:0 as"), std::string::npos);
  inputs.device_memory = {10 * kGiB, 10 * kGiB};
  EXPECT_EQ(decide_placement(inputs).reason.find("fits on sim:0 as"), std::string::npos);
  // A device without kernels for narrow rows keeps a bfloat16 table off it, and never suggests it.
  inputs.device = embedkit::detail::DeviceFacts{"cuda:0", true, false};
  inputs.device_memory = {20 * kGiB, 20 * kGiB};
  EXPECT_EQ(decide_placement(inputs).reason.find("as bfloat16"), std::string::npos);
  inputs.dtype = embedkit::DType::bfloat16;
  inputs.bytes.weights = 12 * kGiB;
  decision = decide_placement(inputs);
  EXPECT_EQ(decision.reason_code, PlacementReason::dtype_has_no_cuda_kernel);
  EXPECT_EQ(decision.device, DeviceKind::cpu);
  EXPECT_EQ(decision.reason, "cuda:0 has no kernels for bfloat16 rows (its kernels take float32)");
  inputs.policy = PlacementPolicy::cuda;
  try {
    decide_placement(inputs);
    FAIL() << "forced cuda placed a bfloat16 table on float32 kernels";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::unsupported);
    EXPECT_NE(std::string(e.what()).find("use dtype 'float32'"), std::string::npos) << e.what();
  }
}

// A real table: its bytes by type, placed on the simulated device as bfloat16 where float32 would not fit.
TEST(Placement, NarrowTableFitsWhereFloat32DoesNot) {
  auto context = embedkit::testing::sim_context(2u << 20);  // 2 MiB
  embedkit::TableConfig config;
  config.input_dim = 4096;
  config.output_dim = 128;  // 1 MiB as bfloat16, 2 MiB as float32, plus the workspace
  config.max_batch_lookups = 256;
  config.gpu_memory_headroom = 0;
  config.dtype = embedkit::DType::bfloat16;
  const embedkit::EmbeddingTable table(config, *context);
  EXPECT_EQ(table.placement().device, DeviceKind::cuda) << table.placement().reason;
  EXPECT_EQ(table.placement().bytes.weights, 4096u * 128u * 2u);
  EXPECT_NE(table.placement().reason.find("fits on sim:0 as bfloat16"), std::string::npos) << table.placement().reason;
  EXPECT_NE(table.summary().to_string().find("dtype           bfloat16 (2 bytes a value)"), std::string::npos)
      << table.summary().to_string();
  config.dtype = embedkit::DType::float32;
  const embedkit::EmbeddingTable full(config, *context);
  EXPECT_EQ(full.placement().device, DeviceKind::cpu) << full.placement().reason;
  EXPECT_EQ(full.placement().bytes.weights, 4096u * 128u * 4u);
}

TEST(Placement, EnvironmentOverridesTheConfig) {
  bool from_environment = false;
  ASSERT_EQ(::setenv("EMBEDKIT_DEVICE", "cpu", 1), 0);
  EXPECT_EQ(embedkit::detail::effective_policy(PlacementPolicy::cuda, &from_environment), PlacementPolicy::cpu);
  EXPECT_TRUE(from_environment);
  ASSERT_EQ(::setenv("EMBEDKIT_DEVICE", "gpu", 1), 0);
  EXPECT_THROW(embedkit::detail::effective_policy(PlacementPolicy::cpu, &from_environment), Error);
  ASSERT_EQ(::unsetenv("EMBEDKIT_DEVICE"), 0);
  EXPECT_EQ(embedkit::detail::effective_policy(PlacementPolicy::cuda, &from_environment), PlacementPolicy::cuda);
  EXPECT_FALSE(from_environment);
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
