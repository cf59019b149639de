// The table's memory as callers reach it (src/table/table_state.cpp) and padding_idx's two read
// modes, on the CPU and the simulated device: a weights view writes through and blocks migrate
// while it lives; optimizer state is restored whole or not at all; padding_reads "row" returns the
// padding row as torch.nn.Embedding does, while training and pooling still leave it out.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/sim_context.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace {

using embedkit::Context;
using embedkit::DeviceKind;
using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::NamedArray;
using embedkit::PaddingReads;
using embedkit::PlacementPolicy;
using embedkit::PoolingMode;
using embedkit::Status;
using embedkit::TableConfig;
using embedkit::testing::sim_context;

constexpr std::uint64_t kMiB = 1 << 20;

TableConfig small_config(const char* optimizer = "{\"class_name\": \"SGD\", \"config\": {\"learning_rate\": 0.5}}") {
  return TableConfig::from_json(
      std::string(R"({"input_dim": 6, "output_dim": 3, "seed": 11, "max_batch_lookups": 64, "optimizer": )") +
      optimizer + "}");
}

Status status_of(auto&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.status();
  }
  return Status::ok;
}

std::string message_of(auto&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(WeightsView, WritesReachTheTableAndStepsShowThrough) {
  EmbeddingTable table(small_config());
  embedkit::WeightsView view = table.weights_view();
  ASSERT_EQ(view.rows(), 6);
  ASSERT_EQ(view.dim(), 3);
  ASSERT_EQ(view.values().size(), 18u);
  for (std::size_t i = 0; i < 18; ++i) view.values()[i] = static_cast<float>(i);
  const embedkit::Array<float> weights = table.get_weights();
  for (std::size_t i = 0; i < 18; ++i) EXPECT_EQ(weights.values[i], static_cast<float>(i));
  const std::int64_t ids[] = {4};
  const float grad[] = {1, 2, 3};
  table.train_step(IndexTensor(ids, {1}), grad);
  EXPECT_EQ(view.values()[12], 12.0f - 0.5f);
  EXPECT_EQ(view.values()[14], 14.0f - 1.5f);
  // set_weights from the view itself is a no-op, not an overlap error.
  table.set_weights(std::span<const float>(view.values()), std::vector<std::int64_t>{6, 3});
  EXPECT_EQ(table.get_weights().values[12], 11.5f);
}

TEST(WeightsView, MigrateRefusesWhileAViewLivesAndChangesNothing) {
  auto context = sim_context(64 * kMiB);
  TableConfig config = small_config();
  config.placement = PlacementPolicy::cpu;
  EmbeddingTable table(config, *context);
  {
    embedkit::WeightsView first = table.weights_view();
    embedkit::WeightsView copy = first;  // copies count once, with the view they copy
    embedkit::WeightsView second = table.weights_view();
    const std::string message = message_of([&] { table.migrate("cuda"); });
    EXPECT_NE(message.find("table 'embedding' has 2 live views of its weights"), std::string::npos) << message;
    EXPECT_EQ(status_of([&] { table.migrate("cuda"); }), Status::busy);
    EXPECT_EQ(table.placement().device, DeviceKind::cpu);
    EXPECT_EQ(context->device_bytes_placed(), 0u);
    table.migrate("cpu");  // where it already is: nothing is replaced, nothing refused
  }
  table.migrate("cuda");  // every view gone
  EXPECT_EQ(table.placement().device, DeviceKind::cuda);
  const std::string message = message_of([&] { (void)table.weights_view(); });
  EXPECT_NE(message.find("cannot be viewed in place from the host; read them with get_weights"), std::string::npos)
      << message;
  EXPECT_EQ(status_of([&] { (void)table.weights_view(); }), Status::unsupported);
}

TEST(OptimizerState, RestoredWholeOnEveryBackend) {
  auto context = sim_context(64 * kMiB);
  for (const PlacementPolicy placement : {PlacementPolicy::cpu, PlacementPolicy::cuda}) {
    TableConfig config = small_config(R"({"class_name": "Adam", "config": {"learning_rate": 0.1}})");
    config.placement = placement;
    EmbeddingTable table(config, *context);
    ASSERT_EQ(table.optimizer_state_names(), (std::vector<std::string>{"momentum", "velocity"}));
    std::vector<float> momentum(18), velocity(18);
    for (std::size_t i = 0; i < 18; ++i) {
      momentum[i] = 0.25f * static_cast<float>(i);
      velocity[i] = 1.0f + static_cast<float>(i);
    }
    const std::int64_t shape[] = {6, 3};
    const NamedArray slots[] = {{"velocity", velocity, shape}, {"momentum", momentum, shape}};  // any order
    table.set_optimizer_state(5, slots);
    EXPECT_EQ(table.step(), 5);
    EXPECT_EQ(std::vector<float>(table.optimizer_state("momentum").values), momentum);
    EXPECT_EQ(std::vector<float>(table.optimizer_state("velocity").values), velocity);

    // A table trained from restored state equals one that reached that state by training.
    EmbeddingTable twin(config, *context);
    twin.set_optimizer_state(5, slots);
    const std::int64_t ids[] = {1, 1, 3};
    const float grad[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    table.train_step(IndexTensor(ids, {3}), grad);
    twin.train_step(IndexTensor(ids, {3}), grad);
    EXPECT_EQ(std::vector<float>(table.get_weights().values), std::vector<float>(twin.get_weights().values));

    // Bad restores change nothing.
    const auto before_m = std::vector<float>(table.optimizer_state("momentum").values);
    const auto before_v = std::vector<float>(table.optimizer_state("velocity").values);
    const std::vector<float> zeros(18, 0.0f);
    const std::int64_t wrong[] = {3, 6};
    const NamedArray missing[] = {{"momentum", zeros, shape}};
    const NamedArray twice[] = {{"momentum", zeros, shape}, {"momentum", zeros, shape}};
    const NamedArray unknown[] = {{"momentum", zeros, shape}, {"accumulator", zeros, shape}};
    const NamedArray misshapen[] = {{"momentum", zeros, shape}, {"velocity", zeros, wrong}};
    EXPECT_NE(message_of([&] { table.set_optimizer_state(9, missing); }).find("optimizer state 'velocity' is missing"),
              std::string::npos);
    EXPECT_NE(message_of([&] { table.set_optimizer_state(9, twice); }).find("'momentum' is given twice (slots[1])"),
              std::string::npos);
    EXPECT_NE(message_of([&] {
                table.set_optimizer_state(9, unknown);
              }).find("has no optimizer state 'accumulator' (adam keeps: momentum, velocity)"),
              std::string::npos);
    EXPECT_EQ(status_of([&] { table.set_optimizer_state(9, misshapen); }), Status::shape_mismatch);
    EXPECT_EQ(status_of([&] { table.set_optimizer_state(-1, slots); }), Status::invalid_argument);
    EXPECT_EQ(table.step(), 6);
    EXPECT_EQ(std::vector<float>(table.optimizer_state("momentum").values), before_m);
    EXPECT_EQ(std::vector<float>(table.optimizer_state("velocity").values), before_v);
  }
}

TEST(OptimizerState, PerRowSlotsAndStatelessOptimizers) {
  EmbeddingTable rowwise(small_config(R"("rowwise_adagrad")"));
  const std::vector<float> accumulator = {1, 2, 3, 4, 5, 6};
  const std::int64_t rows[] = {6};
  const NamedArray slots[] = {{"row_accumulator", accumulator, rows}};
  rowwise.set_optimizer_state(2, slots);
  EXPECT_EQ(std::vector<float>(rowwise.optimizer_state("row_accumulator").values), accumulator);
  EmbeddingTable sgd(small_config());
  sgd.set_optimizer_state(3, {});  // SGD keeps only its step
  EXPECT_EQ(sgd.step(), 3);
}

// Padding in both read modes, on the CPU and the simulated device.
class PaddingReadsTest : public ::testing::TestWithParam<PlacementPolicy> {};

TEST_P(PaddingReadsTest, RowModeReadsTheRowAndNeverTrainsIt) {
  auto context = sim_context(64 * kMiB);
  TableConfig config = small_config();
  config.placement = GetParam();
  config.padding_idx = 2;
  config.padding_reads = PaddingReads::row;
  EmbeddingTable table(config, *context);
  // A new table's padding row is zeros, as torch's is.
  EXPECT_EQ(table.row(2), (std::vector<float>{0, 0, 0}));
  EXPECT_NE(table.row(1), (std::vector<float>{0, 0, 0}));
  // A pretrained padding row is returned as it is.
  const std::vector<float> pretrained = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
  table.set_weights(pretrained, std::vector<std::int64_t>{6, 3});
  const std::int64_t ids[] = {2, 0, 2};
  const embedkit::Array<float> out = table.lookup(IndexTensor(ids, {3}));
  EXPECT_EQ(std::vector<float>(out.values), (std::vector<float>{6, 7, 8, 0, 1, 2, 6, 7, 8}));
  // Training leaves it alone; pooling leaves it out of the bag and out of mean's count.
  const std::vector<float> grad(9, 1.0f);
  table.train_step(IndexTensor(ids, {3}), grad);
  EXPECT_EQ(table.row(2), (std::vector<float>{6, 7, 8}));
  EXPECT_EQ(table.row(0), (std::vector<float>{-0.5f, 0.5f, 1.5f}));
  const std::int64_t bag_ids[] = {2, 5};
  const std::int64_t offsets[] = {0, 2};
  const embedkit::Array<float> mean = table.lookup_pooled(IndexTensor(bag_ids, {2}), offsets, PoolingMode::mean);
  EXPECT_EQ(std::vector<float>(mean.values), (std::vector<float>{15, 16, 17}));

  // The default reads zeros, whatever the row holds.
  config.padding_reads = PaddingReads::zeros;
  EmbeddingTable keras(config, *context);
  keras.set_weights(pretrained, std::vector<std::int64_t>{6, 3});
  const embedkit::Array<float> zeros = keras.lookup(IndexTensor(ids, {1}));
  EXPECT_EQ(std::vector<float>(zeros.values), (std::vector<float>{0, 0, 0}));
}

INSTANTIATE_TEST_SUITE_P(Backends, PaddingReadsTest, ::testing::Values(PlacementPolicy::cpu, PlacementPolicy::cuda));

TEST(PaddingReads, ConfigRoundTripsAndRefusesOtherValues) {
  TableConfig config = TableConfig::from_json(R"({"input_dim": 4, "output_dim": 2, "padding_idx": 0,
                                                  "padding_reads": "row"})");
  EXPECT_EQ(config.padding_reads, PaddingReads::row);
  EXPECT_EQ(TableConfig::from_json(config.to_json()).padding_reads, PaddingReads::row);
  EXPECT_EQ(TableConfig::from_json(R"({"input_dim": 4, "output_dim": 2})").padding_reads, PaddingReads::zeros);
  const std::string message =
      message_of([] { TableConfig::from_json(R"({"input_dim": 4, "output_dim": 2, "padding_reads": "torch"})"); });
  EXPECT_EQ(message, "padding_reads must be 'zeros' or 'row', got \"torch\"");
}

}  // namespace
