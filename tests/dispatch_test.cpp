// The dispatch layer on a simulated device: placement of real tables, OOM injected at every
// allocation of creation, lookup and train step, chunked steps bitwise equal to whole ones, the
// ledger, migration, staging of device tensors, the EMBEDKIT_DEVICE override and the log line.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "src/capi/dlpack_view.hpp"
#include "tests/sim_context.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using embedkit::Context;
using embedkit::DeviceKind;
using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::PlacementReason;
using embedkit::Status;
using embedkit::TableConfig;
using embedkit::testing::sim_context;
using embedkit::testing::sim_of;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

TableConfig config_for(std::int64_t rows, std::int64_t dim, OptimizerKind optimizer = OptimizerKind::adagrad) {
  TableConfig config;
  config.name = "items";
  config.input_dim = rows;
  config.output_dim = dim;
  config.seed = 5;
  config.max_batch_lookups = 1024;
  config.gpu_memory_headroom = 0;
  config.optimizer = OptimizerConfig::defaults(optimizer);
  config.optimizer.learning_rate = 0.1;
  return config;
}

struct Batch {
  std::vector<std::int64_t> ids;
  std::vector<float> grad;
};

Batch batch(std::int64_t rows, std::int64_t dim, std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Batch b;
  for (std::size_t i = 0; i < count; ++i) b.ids.push_back(rng() % 4 == 0 ? 3 : static_cast<std::int64_t>(rng() % rows));
  for (std::size_t i = 0; i < count * static_cast<std::size_t>(dim); ++i) {
    b.grad.push_back(static_cast<float>(static_cast<double>(rng() % 2001) / 1000.0 - 1.0));
  }
  return b;
}

// Weights and every optimizer state array, for bitwise comparisons.
std::vector<float> everything(const EmbeddingTable& table) {
  std::vector<float> all = table.get_weights().values;
  for (const auto& name : table.optimizer_state_names()) {
    const auto state = table.optimizer_state(name).values;
    all.insert(all.end(), state.begin(), state.end());
  }
  return all;
}

TEST(Dispatch, AutoPlacesOnTheDeviceWhenItFits) {
  auto context = sim_context(64 * kMiB);
  const EmbeddingTable table(config_for(1000, 16), *context);
  EXPECT_EQ(table.placement().device, DeviceKind::cuda);
  EXPECT_EQ(table.placement().device_name(), "sim:0");
  EXPECT_EQ(table.placement().reason_code, PlacementReason::fits_on_device);
  EXPECT_EQ(context->device_bytes_placed(), table.placement().bytes.total());
  // Weights and Adagrad's accumulator live on the device.
  EXPECT_EQ(sim_of(*context).used_bytes(), 2u * 1000u * 16u * 4u);
}

TEST(Dispatch, DeviceTableComputesWhatTheCpuTableDoes) {
  auto context = sim_context(64 * kMiB);
  EmbeddingTable device(config_for(500, 8), *context);
  TableConfig cpu_config = config_for(500, 8);
  cpu_config.placement = embedkit::PlacementPolicy::cpu;
  EmbeddingTable cpu(cpu_config, *context);
  ASSERT_EQ(device.placement().device, DeviceKind::cuda);
  ASSERT_EQ(cpu.placement().device, DeviceKind::cpu);
  const Batch b = batch(500, 8, 700, 1);
  for (int step = 0; step < 3; ++step) {
    device.train_step(IndexTensor(b.ids), b.grad);
    cpu.train_step(IndexTensor(b.ids), b.grad);
  }
  EXPECT_EQ(everything(device), everything(cpu));
  EXPECT_EQ(device.lookup(IndexTensor(b.ids)).values, cpu.lookup(IndexTensor(b.ids)).values);
  const std::vector<std::int64_t> offsets = {0, 100, 100, 700};
  EXPECT_EQ(device.lookup_pooled(IndexTensor(b.ids), offsets, embedkit::PoolingMode::sqrtn).values,
            cpu.lookup_pooled(IndexTensor(b.ids), offsets, embedkit::PoolingMode::sqrtn).values);
  const std::vector<float> bag_grad(3 * 8, 0.5f);
  device.train_step_pooled(IndexTensor(b.ids), offsets, embedkit::PoolingMode::max, {}, bag_grad);
  cpu.train_step_pooled(IndexTensor(b.ids), offsets, embedkit::PoolingMode::max, {}, bag_grad);
  EXPECT_EQ(everything(device), everything(cpu));
  EXPECT_GT(sim_of(*context).bytes_to_device(), 0u);  // inputs crossed through the transfer path
  EXPECT_GT(sim_of(*context).bytes_to_host(), 0u);
}

TEST(Dispatch, TablesThatDoNotFitOrCannotRunStayOnTheCpu) {
  auto context = sim_context(1 * kMiB);
  const EmbeddingTable big(config_for(100000, 16), *context);  // 12.8 MB with its accumulator
  EXPECT_EQ(big.placement().device, DeviceKind::cpu);
  EXPECT_EQ(big.placement().reason_code, PlacementReason::does_not_fit);
  TableConfig custom = config_for(10, 4);
  custom.optimizer = OptimizerConfig::custom([](std::int64_t, float*, const float*, float*, int) {}, 0);
  const EmbeddingTable host_only(custom, *context);
  EXPECT_EQ(host_only.placement().reason_code, PlacementReason::optimizer_has_no_cuda_kernel);
  custom.placement = embedkit::PlacementPolicy::cuda;
  try {
    EmbeddingTable forced(custom, *context);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::unsupported);
    EXPECT_NE(std::string(e.what()).find("has no sparse CUDA kernel"), std::string::npos) << e.what();
  }
  TableConfig forced_big = config_for(100000, 16);
  forced_big.placement = embedkit::PlacementPolicy::cuda;
  try {
    EmbeddingTable forced(forced_big, *context);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_memory);
    EXPECT_NE(std::string(e.what()).find("raise gpu_memory_limit"), std::string::npos) << e.what();
  }
  EXPECT_EQ(context->device_bytes_placed(), 0u);
}

TEST(Dispatch, LedgerKeepsTablesFromOvercommittingTogether) {
  auto context = sim_context(10 * kMiB);
  // Each table needs 4 MiB (weights 2 + accumulator 2) plus a small workspace: two fit, not three.
  std::vector<EmbeddingTable> tables;
  for (int t = 0; t < 3; ++t) tables.emplace_back(config_for(32768, 16), *context);
  EXPECT_EQ(tables[0].placement().device, DeviceKind::cuda);
  EXPECT_EQ(tables[1].placement().device, DeviceKind::cuda);
  EXPECT_EQ(tables[2].placement().device, DeviceKind::cpu);
  EXPECT_EQ(tables[2].placement().reason_code, PlacementReason::does_not_fit);
  EXPECT_NE(tables[2].placement().reason.find("workspace promised to earlier tables"), std::string::npos)
      << tables[2].placement().reason;
  const std::uint64_t two = context->device_bytes_placed();
  EXPECT_EQ(two, 2 * tables[0].placement().bytes.total());
  tables.erase(tables.begin());  // a destroyed table gives its share back
  EXPECT_EQ(context->device_bytes_placed(), two / 2);
  const EmbeddingTable again(config_for(32768, 16), *context);
  EXPECT_EQ(again.placement().device, DeviceKind::cuda);
}

TEST(Dispatch, GpuMemoryLimitCapsTheDevice) {
  auto context = sim_context(64 * kMiB);
  TableConfig config = config_for(32768, 16);
  config.gpu_memory_limit = 2 * kMiB;
  const EmbeddingTable table(config, *context);
  EXPECT_EQ(table.placement().reason_code, PlacementReason::does_not_fit);
  EXPECT_NE(table.placement().reason.find("gpu_memory_limit 2.0 MiB"), std::string::npos) << table.placement().reason;
}

TEST(Dispatch, CreationFallsBackToTheCpuOnEveryInjectedDeviceFailure) {
  // Creation makes 2 device allocations (weights, accumulator): fail each one in turn.
  for (std::int64_t n = 1; n <= 2; ++n) {
    auto context = sim_context(64 * kMiB);
    sim_of(*context).fail_allocation_in(n);
    const EmbeddingTable table(config_for(100, 4), *context);
    EXPECT_EQ(table.placement().device, DeviceKind::cpu) << n;
    EXPECT_EQ(table.placement().reason_code, PlacementReason::device_allocation_failed) << n;
    EXPECT_EQ(sim_of(*context).used_bytes(), 0u) << "device memory leaked at allocation " << n;
    EXPECT_EQ(context->device_bytes_placed(), 0u);
    // The same matrix as any other table of this seed: the fallback is complete.
    TableConfig cpu_config = config_for(100, 4);
    cpu_config.placement = embedkit::PlacementPolicy::cpu;
    EXPECT_EQ(table.get_weights().values, EmbeddingTable(cpu_config).get_weights().values);
    // Forced, the same failure is an error.
    TableConfig forced = config_for(100, 4);
    forced.placement = embedkit::PlacementPolicy::cuda;
    sim_of(*context).fail_allocation_in(n);
    EXPECT_THROW(EmbeddingTable(forced, *context), Error);
    EXPECT_EQ(sim_of(*context).used_bytes(), 0u);
  }
}

TEST(Dispatch, LookupFailsCleanlyOnEveryInjectedFailure) {
  auto context = sim_context(64 * kMiB);
  const EmbeddingTable table(config_for(200, 4), *context);
  const std::vector<std::int64_t> ids = {5, 7, 5};
  const auto expected = table.lookup(IndexTensor(ids)).values;
  for (std::int64_t n = 1; n <= 2; ++n) {  // staged ids, staged output
    sim_of(*context).fail_allocation_in(n);
    std::vector<float> out(12, -1.0f);
    try {
      table.lookup(IndexTensor(ids), out);
      FAIL() << n;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::out_of_memory);
    }
    EXPECT_EQ(out, std::vector<float>(12, -1.0f));               // nothing written
    EXPECT_EQ(table.lookup(IndexTensor(ids)).values, expected);  // still usable
  }
}

TEST(Dispatch, TrainStepSurvivesEveryInjectedFailureBitwise) {
  const Batch b = batch(300, 8, 900, 2);
  TableConfig reference_config = config_for(300, 8, OptimizerKind::adam);
  reference_config.placement = embedkit::PlacementPolicy::cpu;
  EmbeddingTable reference(reference_config);
  reference.train_step(IndexTensor(b.ids), b.grad);
  reference.train_step(IndexTensor(b.ids), b.grad);
  // A step stages ids and gradient (its workspace is held from the first step), and allocates the
  // folded gradient and its row flags: fail each of them once. The step retries in chunks and
  // lands on the same bits. (The fused step's fallback to this path is tests/fused_step_test.cpp's.)
  for (std::int64_t n = 1; n <= 6; ++n) {
    auto context = sim_context(64 * kMiB);
    sim_of(*context).offer_fused_steps(false);
    EmbeddingTable table(config_for(300, 8, OptimizerKind::adam), *context);
    ASSERT_EQ(table.placement().device, DeviceKind::cuda);
    table.train_step(IndexTensor(b.ids), b.grad);
    sim_of(*context).fail_allocation_in(n);
    table.train_step(IndexTensor(b.ids), b.grad);
    EXPECT_EQ(table.step(), 2) << n;
    EXPECT_EQ(everything(table), everything(reference)) << "injected failure at allocation " << n;
  }
}

TEST(Dispatch, ChunkedStepsEqualWholeStepsBitwiseAndAHotRowThatCannotFitFails) {
  // A device too small for the whole step's workspace, large enough for its parts.
  const Batch b = batch(2000, 16, 6000, 3);
  for (const OptimizerKind kind : {OptimizerKind::adagrad, OptimizerKind::adam}) {
    TableConfig config = config_for(2000, 16, kind);
    config.optimizer.lazy = kind != OptimizerKind::adam;  // dense Adam: every row, chunk by chunk
    TableConfig cpu_config = config;
    cpu_config.placement = embedkit::PlacementPolicy::cpu;
    EmbeddingTable whole(cpu_config);
    auto context = sim_context(2000 * 16 * 4 * 3 + 600 * 1024);
    EmbeddingTable chunked(config, *context);
    ASSERT_EQ(chunked.placement().device, DeviceKind::cuda);
    for (int step = 0; step < 2; ++step) {
      whole.train_step(IndexTensor(b.ids), b.grad);
      chunked.train_step(IndexTensor(b.ids), b.grad);
    }
    EXPECT_EQ(everything(chunked), everything(whole)) << embedkit::to_string(kind);
  }
  // One id alone whose rows need more than the device can give: EK_OUT_OF_MEMORY, table unchanged.
  auto context = sim_context(2000 * 16 * 4 * 2 + 64 * 1024);
  TableConfig small_batches = config_for(2000, 16);
  small_batches.max_batch_lookups = 64;  // the table fits; a 4000-lookup batch of one id does not
  EmbeddingTable table(small_batches, *context);
  ASSERT_EQ(table.placement().device, DeviceKind::cuda);
  const std::vector<std::int64_t> hot(4000, 9);
  const std::vector<float> grad(4000 * 16, 1.0f);
  const auto before = everything(table);
  try {
    table.train_step(IndexTensor(hot), grad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_memory) << e.what();
  }
  EXPECT_EQ(everything(table), before);
  EXPECT_EQ(table.step(), 0);
}

TEST(Dispatch, PooledStepsSurviveEveryInjectedFailureBitwise) {
  const Batch b = batch(300, 8, 900, 6);
  std::vector<std::int64_t> offsets = {0};
  for (int bag = 1; bag <= 60; ++bag) offsets.push_back(bag * 15);
  std::vector<float> sample_weights(900), bag_grad(60 * 8);
  for (std::size_t i = 0; i < sample_weights.size(); ++i) sample_weights[i] = 0.25f + static_cast<float>(i % 7) / 4.0f;
  for (std::size_t i = 0; i < bag_grad.size(); ++i) bag_grad[i] = b.grad[i];
  for (const auto mode : {embedkit::PoolingMode::mean, embedkit::PoolingMode::max}) {
    const std::vector<float> weights = mode == embedkit::PoolingMode::max ? std::vector<float>{} : sample_weights;
    TableConfig reference_config = config_for(300, 8, OptimizerKind::adagrad);
    reference_config.padding_idx = 3;  // the batch's hot id: skipped everywhere
    TableConfig config = reference_config;
    reference_config.placement = embedkit::PlacementPolicy::cpu;
    EmbeddingTable reference(reference_config);
    reference.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
    // Staged ids, offsets, (weights,) gradient, the folded gradient and its flags: fail each once.
    // (The fused step's fallback to this path is tests/fused_step_test.cpp's.)
    for (std::int64_t n = 1; n <= 7; ++n) {
      auto context = sim_context(64 * kMiB);
      sim_of(*context).offer_fused_steps(false);
      EmbeddingTable table(config, *context);
      ASSERT_EQ(table.placement().device, DeviceKind::cuda);
      sim_of(*context).fail_allocation_in(n);
      table.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
      EXPECT_EQ(everything(table), everything(reference)) << embedkit::to_string(mode) << " failure at " << n;
    }
  }
}

TEST(Dispatch, MigrationRoundTripsBitwise) {
  auto context = sim_context(64 * kMiB);
  TableConfig config = config_for(400, 8, OptimizerKind::ftrl);
  config.placement = embedkit::PlacementPolicy::cpu;
  EmbeddingTable moving(config, *context);
  EmbeddingTable staying(config, *context);
  const Batch b = batch(400, 8, 500, 4);
  moving.train_step(IndexTensor(b.ids), b.grad);
  staying.train_step(IndexTensor(b.ids), b.grad);
  // On the CPU the step's scratch is allocated per call; a device table holds it as its workspace.
  const std::uint64_t scratch = moving.placement().bytes.step_scratch;
  EXPECT_GT(scratch, 0u);
  EXPECT_EQ(moving.placement().bytes.workspace, 0u);
  moving.migrate("cuda");
  EXPECT_EQ(moving.placement().bytes.workspace, scratch);
  EXPECT_EQ(moving.placement().bytes.step_scratch, 0u);
  EXPECT_EQ(moving.placement().device_name(), "sim:0");
  EXPECT_EQ(moving.placement().reason_code, PlacementReason::migrated);
  EXPECT_EQ(moving.step(), 1);
  EXPECT_EQ(context->device_bytes_placed(), moving.placement().bytes.total());
  EXPECT_EQ(everything(moving), everything(staying));
  moving.train_step(IndexTensor(b.ids), b.grad);  // a step on the device...
  staying.train_step(IndexTensor(b.ids), b.grad);
  moving.migrate("cpu");  // ...and back
  EXPECT_EQ(moving.placement().bytes.workspace, 0u);
  EXPECT_EQ(moving.placement().bytes.step_scratch, scratch);
  EXPECT_EQ(context->device_bytes_placed(), 0u);
  EXPECT_EQ(sim_of(*context).used_bytes(), 0u);
  EXPECT_EQ(everything(moving), everything(staying));
  moving.migrate("cpu");  // already there: nothing to do
  EXPECT_THROW(moving.migrate("tpu"), Error);
  EXPECT_THROW(EmbeddingTable(config).migrate("cuda"), Error);  // the default context has no device here
}

TEST(Dispatch, FailedMigrationChangesNothing) {
  auto context = sim_context(64 * kMiB);
  TableConfig config = config_for(400, 8, OptimizerKind::adam);
  config.placement = embedkit::PlacementPolicy::cpu;
  EmbeddingTable table(config, *context);
  const auto before = everything(table);
  for (std::int64_t n = 1; n <= 3; ++n) {  // weights, m, v
    sim_of(*context).fail_allocation_in(n);
    EXPECT_THROW(table.migrate("cuda"), Error);
    EXPECT_EQ(table.placement().device, DeviceKind::cpu);
    EXPECT_EQ(sim_of(*context).used_bytes(), 0u);
    EXPECT_EQ(everything(table), before);
  }
  auto small = sim_context(1024);
  EmbeddingTable elsewhere(config, *small);
  try {
    elsewhere.migrate("cuda");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_memory);
  }
}

TEST(Dispatch, DeviceTensorsAreStagedAcross) {
  embedkit::detail::SimDeviceBackend device(kMiB);
  auto ids_memory = device.allocate(3 * sizeof(std::int64_t), "ids");
  const std::int64_t ids[] = {2, 0, 1};
  device.copy_from_host(ids_memory.as<void>(), ids, sizeof ids);
  std::int64_t shape[] = {3};
  DLTensor tensor{ids_memory.as<void>(), {kDLCUDA, 0}, 1, {kDLInt, 64, 1}, shape, nullptr, 0};
  embedkit::detail::TensorStaging staging(&device);
  const IndexTensor staged = staging.indices(&tensor);
  EXPECT_NE(staged.data(), ids_memory.as<void>());  // a host copy, not the device pointer
  EXPECT_EQ(std::memcmp(staged.data(), ids, sizeof ids), 0);
  // An output in device memory is written back only by finish().
  auto out_memory = device.allocate(3 * sizeof(float), "out");
  DLTensor out{out_memory.as<void>(), {kDLCUDA, 0}, 1, {kDLFloat, 32, 1}, shape, nullptr, 0};
  const auto host_out = staging.output(&out, "out", embedkit::detail::Accept::float32);
  static_cast<float*>(host_out.data)[1] = 42.0f;
  staging.finish();
  float back[3];
  device.copy_to_host(back, out_memory.as<void>(), sizeof back);
  EXPECT_EQ(back[1], 42.0f);
  // A host pointer that claims to be device memory is caught, not read as device memory.
  std::int64_t host_ids[] = {1, 2, 3};
  DLTensor liar{host_ids, {kDLCUDA, 0}, 1, {kDLInt, 64, 1}, shape, nullptr, 0};
  try {
    staging.indices(&liar);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("is not memory of sim:0"), std::string::npos);
  }
  // And the simulated device refuses to compute on host memory handed to it as device memory.
  embedkit::detail::TableView view;
  view.weights.data = host_ids;
  view.input_dim = 1;
  view.dim = 1;
  EXPECT_THROW(device.gather(view, {ids_memory.as<void>(), embedkit::IndexType::int64, 3}, out_memory.as<float>(),
                             nullptr),
               Error);
}

TEST(Dispatch, EnvironmentVariableOverridesTheConfigAtEachCreation) {
  auto context = sim_context(64 * kMiB);
  ASSERT_EQ(::setenv("EMBEDKIT_DEVICE", "cpu", 1), 0);
  const EmbeddingTable on_cpu(config_for(100, 4), *context);
  EXPECT_EQ(on_cpu.placement().reason_code, PlacementReason::cpu_requested);
  EXPECT_NE(on_cpu.placement().reason.find("EMBEDKIT_DEVICE"), std::string::npos);
  ASSERT_EQ(::setenv("EMBEDKIT_DEVICE", "cuda", 1), 0);
  TableConfig cpu_config = config_for(100, 4);
  cpu_config.placement = embedkit::PlacementPolicy::cpu;
  const EmbeddingTable on_device(cpu_config, *context);  // read again at this creation
  EXPECT_EQ(on_device.placement().device, DeviceKind::cuda);
  ASSERT_EQ(::setenv("EMBEDKIT_DEVICE", "gpu", 1), 0);
  EXPECT_THROW(EmbeddingTable(config_for(100, 4), *context), Error);
  ASSERT_EQ(::unsetenv("EMBEDKIT_DEVICE"), 0);
}

TEST(Dispatch, ThePlacementIsLoggedOnceAtInfo) {
  auto context = sim_context(64 * kMiB);
  embedkit::set_log_level("info");
  ::testing::internal::CaptureStderr();
  const EmbeddingTable table(config_for(100, 4), *context);
  const std::string log = ::testing::internal::GetCapturedStderr();
  embedkit::set_log_level("warn");
  EXPECT_NE(log.find("[embedkit] [info] table 'items' placed on sim:0: needs "), std::string::npos) << log;
  EXPECT_NE(log.find("(weights 1.6 KiB + adagrad state 1.6 KiB + workspace"), std::string::npos) << log;
  EXPECT_NE(log.find("sim:0 usable"), std::string::npos) << log;
}

}  // namespace
