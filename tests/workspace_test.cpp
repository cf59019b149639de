// A table's workspace (src/backend/workspace.hpp), on the simulated device: allocated once, grown
// only when a larger batch arrives, a failed growth retried in chunks to the same bits, and a
// migrated table given a workspace on its new device.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "src/backend/workspace.hpp"
#include "tests/sim_context.hpp"

#include <cstdint>
#include <random>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::OptimizerKind;
using embedkit::Status;
using embedkit::TableConfig;
using embedkit::detail::Workspace;
using embedkit::testing::sim_context;
using embedkit::testing::sim_of;

constexpr std::uint64_t kMiB = 1 << 20;

TEST(Workspace, GrowsOnlyPastItsCapacityAndAFailedGrowthLeavesItEmpty) {
  embedkit::detail::SimDeviceBackend device(1 * kMiB);
  Workspace workspace;
  void* first = workspace.reserve(device, 1000, "w");
  EXPECT_EQ(workspace.capacity(), 1000u);
  EXPECT_EQ(workspace.reserve(device, 1000, "w"), first);
  EXPECT_EQ(workspace.reserve(device, 10, "w"), first);  // never shrinks
  EXPECT_EQ(workspace.growths(), 1);
  workspace.reserve(device, 5000, "w");
  EXPECT_EQ(workspace.capacity(), 5000u);
  EXPECT_EQ(workspace.growths(), 2);
  EXPECT_EQ(device.used_bytes(), 5000u);  // the old buffer went back
  try {
    workspace.reserve(device, 2 * kMiB, "table workspace");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_memory);
    EXPECT_NE(std::string(e.what()).find("table workspace"), std::string::npos) << e.what();
  }
  EXPECT_EQ(workspace.capacity(), 0u);
  EXPECT_EQ(device.used_bytes(), 0u);
  EXPECT_NE(workspace.reserve(device, 100, "w"), nullptr);  // a smaller retry still fits
}

TableConfig config_for(OptimizerKind kind) {
  TableConfig config;
  config.input_dim = 500;
  config.output_dim = 8;
  config.seed = 3;
  config.max_batch_lookups = 4096;
  config.gpu_memory_headroom = 0;
  config.optimizer = embedkit::OptimizerConfig::defaults(kind);
  return config;
}

struct Batch {
  std::vector<std::int64_t> ids;
  std::vector<float> grad;
};

Batch batch(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Batch b;
  for (std::size_t i = 0; i < count; ++i) b.ids.push_back(rng() % 3 == 0 ? 7 : static_cast<std::int64_t>(rng() % 500));
  for (std::size_t i = 0; i < count * 8; ++i) b.grad.push_back(static_cast<float>(rng() % 1000) / 500.0f - 1.0f);
  return b;
}

// Allocations the simulated device makes for one train step.
std::int64_t allocations_of_step(EmbeddingTable& table, embedkit::detail::SimDeviceBackend& device, const Batch& b) {
  const std::int64_t before = device.allocations();
  table.train_step(IndexTensor(b.ids), b.grad);
  return device.allocations() - before;
}

TEST(TableWorkspace, SteadyStepsReuseItAndOnlyALargerBatchGrowsIt) {
  auto context = sim_context(64 * kMiB);
  auto& device = sim_of(*context);
  EmbeddingTable table(config_for(OptimizerKind::adagrad), *context);
  ASSERT_EQ(table.placement().device, embedkit::DeviceKind::cuda);
  const Batch small = batch(1000, 1), large = batch(3000, 2);
  const std::int64_t first = allocations_of_step(table, device, small);
  const std::int64_t steady = allocations_of_step(table, device, small);
  EXPECT_EQ(steady, first - 1) << "a second step of the same size allocated its workspace again";
  EXPECT_EQ(allocations_of_step(table, device, large), first);   // grown once...
  EXPECT_EQ(allocations_of_step(table, device, large), steady);  // ...then kept
  EXPECT_EQ(allocations_of_step(table, device, small), steady);  // and not shrunk
}

TEST(TableWorkspace, AFailedGrowthIsRetriedInChunksToTheSameBits) {
  for (const OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adagrad, OptimizerKind::adam}) {
    TableConfig cpu_config = config_for(kind);
    cpu_config.placement = embedkit::PlacementPolicy::cpu;
    EmbeddingTable reference(cpu_config);
    auto context = sim_context(64 * kMiB);
    auto& device = sim_of(*context);
    EmbeddingTable table(config_for(kind), *context);
    const Batch small = batch(200, 3), large = batch(3000, 4);
    for (EmbeddingTable* t : {&reference, &table}) t->train_step(IndexTensor(small.ids), small.grad);
    // The larger batch stages ids (1) and gradient (2), then grows the workspace (3): fail that.
    device.fail_allocation_in(3);
    for (EmbeddingTable* t : {&reference, &table}) t->train_step(IndexTensor(large.ids), large.grad);
    EXPECT_EQ(table.get_weights().values, reference.get_weights().values) << embedkit::to_string(kind);
    EXPECT_EQ(table.step(), 2);
  }
}

TEST(TableWorkspace, PooledStepsKeepTheirEntryRowsInIt) {
  auto context = sim_context(64 * kMiB);
  auto& device = sim_of(*context);
  TableConfig config = config_for(OptimizerKind::sgd);
  EmbeddingTable table(config, *context);
  config.placement = embedkit::PlacementPolicy::cpu;
  EmbeddingTable reference(config);
  const Batch b = batch(640, 5);
  std::vector<std::int64_t> offsets;
  for (std::int64_t k = 0; k <= 20; ++k) offsets.push_back(k * 32);
  const std::vector<float> grad_bags(20 * 8, 0.25f);
  std::int64_t allocations[2] = {};
  for (std::int64_t& made : allocations) {
    const std::int64_t before = device.allocations();
    table.train_step_pooled(IndexTensor(b.ids), offsets, embedkit::PoolingMode::mean, {}, grad_bags);
    made = device.allocations() - before;
    reference.train_step_pooled(IndexTensor(b.ids), offsets, embedkit::PoolingMode::mean, {}, grad_bags);
  }
  EXPECT_EQ(allocations[1], allocations[0] - 1);
  EXPECT_EQ(table.get_weights().values, reference.get_weights().values);
}

TEST(TableWorkspace, AMigratedTableWorksOnItsNewDevice) {
  auto context = sim_context(64 * kMiB);
  TableConfig config = config_for(OptimizerKind::adagrad);
  config.placement = embedkit::PlacementPolicy::cpu;
  EmbeddingTable table(config, *context);
  EmbeddingTable reference(config);
  const Batch b = batch(1000, 6);
  table.migrate("cuda");
  ASSERT_EQ(table.placement().device, embedkit::DeviceKind::cuda);
  for (int step = 0; step < 2; ++step) {
    table.train_step(IndexTensor(b.ids), b.grad);
    reference.train_step(IndexTensor(b.ids), b.grad);
  }
  table.migrate("cpu");
  table.train_step(IndexTensor(b.ids), b.grad);
  reference.train_step(IndexTensor(b.ids), b.grad);
  EXPECT_EQ(table.get_weights().values, reference.get_weights().values);
}

}  // namespace
