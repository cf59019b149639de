// The table's fused train step (FusedStep::fold_and_apply, fold_pooled_and_apply) on a simulated
// device and on the CPU: bitwise the unfused step for each built-in optimizer and pooling mode, taken only when
// it may be (not under "error", not for dense Adam, rows that fit, train steps), counting skipped
// rows as the unfused step does, and falling back to the unfused step, whole and once, when any
// allocation of it fails.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/sim_context.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using embedkit::ConstraintKind;
using embedkit::DeviceKind;
using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::NonFiniteGradients;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::Status;
using embedkit::TableConfig;
using embedkit::testing::sim_context;
using embedkit::testing::sim_of;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::int64_t kRows = 300;

struct Optimizer {
  const char* name;
  OptimizerKind kind;
  double momentum;
  bool nesterov;
};

const Optimizer kOptimizers[] = {{"sgd", OptimizerKind::sgd, 0.0, false},
                                 {"momentum", OptimizerKind::sgd, 0.9, false},
                                 {"nesterov", OptimizerKind::sgd, 0.9, true},
                                 {"adagrad", OptimizerKind::adagrad, 0.0, false},
                                 {"rowwise_adagrad", OptimizerKind::rowwise_adagrad, 0.0, false},
                                 {"adam", OptimizerKind::adam, 0.0, false},
                                 {"ftrl", OptimizerKind::ftrl, 0.0, false}};

TableConfig config_for(const Optimizer& optimizer, std::int64_t dim) {
  TableConfig config;
  config.name = "fused";
  config.input_dim = kRows;
  config.output_dim = dim;
  config.seed = 11;
  config.max_batch_lookups = 2048;
  config.gpu_memory_headroom = 0;
  config.optimizer = OptimizerConfig::defaults(optimizer.kind);
  config.optimizer.learning_rate = 0.05;
  config.optimizer.momentum = optimizer.momentum;
  config.optimizer.nesterov = optimizer.nesterov;
  config.optimizer.weight_decay = 0.01;
  config.embeddings_regularizer = embedkit::Regularizer{0.001, 0.002};
  config.embeddings_constraint = {ConstraintKind::max_norm, 0.8};
  config.padding_idx = 9;
  return config;
}

struct Batch {
  std::vector<std::int64_t> ids;
  std::vector<float> grad;
};

// A hot id (3) of many pieces, the padding id among the rest, and optionally rows 50 and 51 with a
// NaN and an infinity.
Batch batch(std::int64_t dim, std::size_t count, std::uint64_t seed, bool nonfinite) {
  std::mt19937_64 rng(seed);
  Batch b;
  for (std::size_t i = 0; i < count; ++i)
    b.ids.push_back(rng() % 3 == 0 ? 3 : static_cast<std::int64_t>(rng() % kRows));
  for (std::size_t i = 0; i < count * static_cast<std::size_t>(dim); ++i) {
    b.grad.push_back(static_cast<float>(static_cast<double>(rng() % 2001) / 1000.0 - 1.0));
  }
  if (nonfinite) {
    b.ids[0] = 50;
    b.ids[1] = 51;
    b.grad[0] = std::numeric_limits<float>::quiet_NaN();
    b.grad[static_cast<std::size_t>(2 * dim - 1)] = std::numeric_limits<float>::infinity();
  }
  return b;
}

std::vector<float> everything(const EmbeddingTable& table) {
  std::vector<float> all = table.get_weights().values;
  for (const auto& name : table.optimizer_state_names()) {
    const auto state = table.optimizer_state(name).values;
    all.insert(all.end(), state.begin(), state.end());
  }
  return all;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Three lookup steps on both tables: plain, with two non-finite rows, then with int32 ids (the
// same path).
void train_both(EmbeddingTable& fused, EmbeddingTable& unfused, std::int64_t dim) {
  for (std::uint64_t step = 0; step < 3; ++step) {
    const Batch b = batch(dim, 1500, step, step == 1);
    if (step == 2) {
      const std::vector<std::int32_t> narrow(b.ids.begin(), b.ids.end());
      fused.train_step(IndexTensor(narrow), b.grad);
      unfused.train_step(IndexTensor(narrow), b.grad);
      continue;
    }
    fused.train_step(IndexTensor(b.ids), b.grad);
    unfused.train_step(IndexTensor(b.ids), b.grad);
  }
}

class FusedStep : public ::testing::TestWithParam<int> {};

TEST_P(FusedStep, EqualsTheUnfusedStepBitwiseAndCountsSkippedRows) {
  const Optimizer& optimizer = kOptimizers[GetParam()];
  for (const std::int64_t dim : {1, 16, 129}) {
    auto fused_context = sim_context(64 * kMiB), unfused_context = sim_context(64 * kMiB);
    sim_of(*unfused_context).offer_fused_steps(false);
    EmbeddingTable fused(config_for(optimizer, dim), *fused_context);
    EmbeddingTable unfused(config_for(optimizer, dim), *unfused_context);
    ASSERT_EQ(fused.placement().device, DeviceKind::cuda);
    train_both(fused, unfused, dim);
    EXPECT_EQ(sim_of(*fused_context).fused_steps(), 3) << dim;
    EXPECT_EQ(sim_of(*unfused_context).fused_steps(), 0) << dim;
    EXPECT_EQ(fused.step(), 3);
    EXPECT_TRUE(same_bits(everything(fused), everything(unfused))) << optimizer.name << " dim " << dim;
    EXPECT_EQ(fused.nonfinite_gradient_rows(), 2);
    EXPECT_EQ(unfused.nonfinite_gradient_rows(), 2);
  }
}

// The CPU backend fuses every train step it may (HostOpsBackend::fold_and_apply); the simulated
// device with its fused step off takes the same host kernels unfused: fold, mark, apply.
TEST_P(FusedStep, TheCpuStepIsTheUnfusedStepBitwise) {
  const Optimizer& optimizer = kOptimizers[GetParam()];
  for (const std::int64_t dim : {1, 16, 129}) {
    for (const bool penalized : {true, false}) {  // without penalty and decay: the CPU's plain loops
      SCOPED_TRACE(penalized ? "penalty and weight decay" : "plain");
      TableConfig config = config_for(optimizer, dim);
      if (!penalized) {
        config.optimizer.weight_decay.reset();
        config.embeddings_regularizer.reset();
      }
      TableConfig cpu_config = config;
      cpu_config.placement = embedkit::PlacementPolicy::cpu;
      EmbeddingTable fused(cpu_config);
      auto unfused_context = sim_context(64 * kMiB);
      sim_of(*unfused_context).offer_fused_steps(false);
      EmbeddingTable unfused(config, *unfused_context);
      ASSERT_EQ(fused.placement().device, DeviceKind::cpu);
      ASSERT_TRUE(same_bits(everything(fused), everything(unfused)));
      train_both(fused, unfused, dim);
      // Pooled steps: bags of 15 with weights, bag 5's gradient non-finite, every mode.
      const Batch b = batch(dim, 600, 12, false);
      std::vector<std::int64_t> offsets = {0};
      for (int bag = 1; bag <= 40; ++bag) offsets.push_back(bag * 15);
      std::vector<float> sample_weights(600), bag_grad(b.grad.begin(), b.grad.begin() + 40 * dim);
      for (std::size_t i = 0; i < sample_weights.size(); ++i) {
        sample_weights[i] = 0.25f + static_cast<float>(i % 7) / 4.0f;
      }
      bag_grad[static_cast<std::size_t>(5 * dim)] = std::numeric_limits<float>::quiet_NaN();
      for (const auto mode : {embedkit::PoolingMode::sum, embedkit::PoolingMode::mean, embedkit::PoolingMode::sqrtn,
                              embedkit::PoolingMode::max}) {
        const std::vector<float> weights = mode == embedkit::PoolingMode::max ? std::vector<float>{} : sample_weights;
        fused.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
        unfused.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
      }
      EXPECT_EQ(sim_of(*unfused_context).fused_steps(), 0);
      EXPECT_EQ(fused.step(), unfused.step());
      EXPECT_TRUE(same_bits(everything(fused), everything(unfused))) << optimizer.name << " dim " << dim;
      EXPECT_GT(fused.nonfinite_gradient_rows(), 2);
      EXPECT_EQ(fused.nonfinite_gradient_rows(), unfused.nonfinite_gradient_rows());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, FusedStep, ::testing::Range(0, static_cast<int>(std::size(kOptimizers))),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return kOptimizers[param_info.param].name;
                         });

TEST(FusedStepChoice, ApplyPolicyFusesWithoutCountingAndUnfusableStepsStayUnfused) {
  const Optimizer adagrad = kOptimizers[3];
  const Batch nan_batch = batch(8, 600, 7, true);
  {  // "apply": fused, nothing counted, the NaN lands in the row exactly as unfused
    auto context = sim_context(64 * kMiB), reference_context = sim_context(64 * kMiB);
    sim_of(*reference_context).offer_fused_steps(false);
    TableConfig config = config_for(adagrad, 8);
    config.nonfinite_gradients = NonFiniteGradients::apply;
    EmbeddingTable table(config, *context), reference(config, *reference_context);
    table.train_step(IndexTensor(nan_batch.ids), nan_batch.grad);
    reference.train_step(IndexTensor(nan_batch.ids), nan_batch.grad);
    EXPECT_EQ(sim_of(*context).fused_steps(), 1);
    EXPECT_EQ(table.nonfinite_gradient_rows(), 0);
    EXPECT_TRUE(std::isnan(table.row(50)[0]));
    EXPECT_TRUE(same_bits(everything(table), everything(reference)));
  }
  {  // "error" must name the row before anything changes: the unfused path raises
    auto context = sim_context(64 * kMiB);
    TableConfig config = config_for(adagrad, 8);
    config.nonfinite_gradients = NonFiniteGradients::error;
    EmbeddingTable table(config, *context);
    const auto before = everything(table);
    EXPECT_THROW(table.train_step(IndexTensor(nan_batch.ids), nan_batch.grad), Error);
    EXPECT_TRUE(same_bits(everything(table), before));
    const Batch clean = batch(8, 600, 8, false);
    table.train_step(IndexTensor(clean.ids), clean.grad);
    EXPECT_EQ(table.step(), 1);
    EXPECT_EQ(sim_of(*context).fused_steps(), 0);
  }
  const Batch clean = batch(8, 600, 9, false);
  {  // dense Adam moves every row: unfused
    auto context = sim_context(64 * kMiB);
    TableConfig config = config_for(kOptimizers[5], 8);
    config.optimizer.lazy = false;
    EmbeddingTable table(config, *context);
    table.train_step(IndexTensor(clean.ids), clean.grad);
    EXPECT_EQ(table.step(), 1);
    EXPECT_EQ(sim_of(*context).fused_steps(), 0);
  }
  {  // rows wider than the fused step's registers: unfused
    auto context = sim_context(64 * kMiB);
    EmbeddingTable table(config_for(adagrad, 257), *context);
    const Batch wide = batch(257, 100, 10, false);
    table.train_step(IndexTensor(wide.ids), wide.grad);
    EXPECT_EQ(table.step(), 1);
    EXPECT_EQ(sim_of(*context).fused_steps(), 0);
  }
  {  // a frozen table takes no step at all
    auto context = sim_context(64 * kMiB);
    TableConfig config = config_for(adagrad, 8);
    config.trainable = false;
    EmbeddingTable table(config, *context);
    const auto before = everything(table);
    table.train_step(IndexTensor(clean.ids), clean.grad);
    EXPECT_EQ(table.step(), 0);
    EXPECT_EQ(sim_of(*context).fused_steps(), 0);
    EXPECT_TRUE(same_bits(everything(table), before));
  }
}

TEST(FusedStepFallback, AFailedAllocationOfTheFusedStepFallsBackToTheUnfusedStepOnce) {
  for (const int which : {4, 5}) {  // row-wise Adagrad (a row statistic) and lazy Adam (step-dependent)
    const Optimizer& optimizer = kOptimizers[which];
    const Batch first = batch(16, 900, 1, false), second = batch(16, 900, 2, true);
    auto reference_context = sim_context(64 * kMiB);
    sim_of(*reference_context).offer_fused_steps(false);
    EmbeddingTable reference(config_for(optimizer, 16), *reference_context);
    for (const Batch* b : {&first, &second, &first}) reference.train_step(IndexTensor(b->ids), b->grad);

    // How many allocations a second fused step makes (the first also grows the table's
    // workspace): each of them is failed once below.
    auto probe_context = sim_context(64 * kMiB);
    EmbeddingTable probe(config_for(optimizer, 16), *probe_context);
    probe.train_step(IndexTensor(first.ids), first.grad);
    const std::int64_t before = sim_of(*probe_context).allocations();
    probe.train_step(IndexTensor(second.ids), second.grad);
    const std::int64_t per_step = sim_of(*probe_context).allocations() - before;
    ASSERT_EQ(sim_of(*probe_context).fused_steps(), 2);
    ASSERT_GE(per_step, 5);  // staged ids and gradient, folded ids and rows, flags

    for (std::int64_t n = 1; n <= per_step; ++n) {
      auto context = sim_context(64 * kMiB);
      EmbeddingTable table(config_for(optimizer, 16), *context);
      table.train_step(IndexTensor(first.ids), first.grad);
      sim_of(*context).fail_allocation_in(n);
      table.train_step(IndexTensor(second.ids), second.grad);
      EXPECT_EQ(sim_of(*context).fused_steps(), 1) << "the failed step was not fused, at allocation " << n;
      EXPECT_EQ(table.step(), 2) << n;
      EXPECT_EQ(table.nonfinite_gradient_rows(), 2) << n;
      table.train_step(IndexTensor(first.ids), first.grad);  // the step count feeds Adam's next step
      EXPECT_TRUE(same_bits(everything(table), everything(reference)))
          << optimizer.name << ": injected failure at allocation " << n;
    }
  }
}

TEST(FusedStepPooled, EqualsTheUnfusedPooledStepBitwiseAndFallsBackOnEveryFailure) {
  const Optimizer& optimizer = kOptimizers[4];  // row-wise Adagrad
  const Batch b = batch(8, 600, 12, false);
  std::vector<std::int64_t> offsets = {0};
  for (int bag = 1; bag <= 40; ++bag) offsets.push_back(bag * 15);
  std::vector<float> sample_weights(600), bag_grad(40 * 8);
  for (std::size_t i = 0; i < sample_weights.size(); ++i) sample_weights[i] = 0.25f + static_cast<float>(i % 7) / 4.0f;
  for (std::size_t i = 0; i < bag_grad.size(); ++i) bag_grad[i] = b.grad[i];
  bag_grad[5 * 8 + 2] = std::numeric_limits<float>::quiet_NaN();  // bag 5's entries: non-finite rows
  for (const auto mode : {embedkit::PoolingMode::sum, embedkit::PoolingMode::mean, embedkit::PoolingMode::sqrtn,
                          embedkit::PoolingMode::max}) {
    const std::vector<float> weights = mode == embedkit::PoolingMode::max ? std::vector<float>{} : sample_weights;
    auto reference_context = sim_context(64 * kMiB);
    sim_of(*reference_context).offer_fused_steps(false);
    EmbeddingTable reference(config_for(optimizer, 8), *reference_context);
    for (int step = 0; step < 2; ++step)
      reference.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
    ASSERT_GT(reference.nonfinite_gradient_rows(), 0);

    auto probe_context = sim_context(64 * kMiB);
    EmbeddingTable probe(config_for(optimizer, 8), *probe_context);
    probe.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
    const std::int64_t before = sim_of(*probe_context).allocations();  // the second step: its workspace is held
    probe.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
    const std::int64_t per_step = sim_of(*probe_context).allocations() - before;
    EXPECT_EQ(sim_of(*probe_context).fused_steps(), 2);
    EXPECT_TRUE(same_bits(everything(probe), everything(reference))) << embedkit::to_string(mode);
    EXPECT_EQ(probe.nonfinite_gradient_rows(), reference.nonfinite_gradient_rows());

    for (std::int64_t n = 1; n <= per_step; ++n) {
      auto context = sim_context(64 * kMiB);
      EmbeddingTable table(config_for(optimizer, 8), *context);
      table.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
      sim_of(*context).fail_allocation_in(n);
      table.train_step_pooled(IndexTensor(b.ids), offsets, mode, weights, bag_grad);
      EXPECT_EQ(sim_of(*context).fused_steps(), 1) << n;
      EXPECT_EQ(table.step(), 2) << n;
      EXPECT_EQ(table.nonfinite_gradient_rows(), reference.nonfinite_gradient_rows()) << n;
      EXPECT_TRUE(same_bits(everything(table), everything(reference)))
          << embedkit::to_string(mode) << ": injected failure at allocation " << n;
    }
  }
}

// A bad id (or gradient) reaches no row on the CPU's fused path: the step is refused, naming the
// value and its position, with every weight, state and the step count as they were.
TEST(FusedStepChoice, TheCpuFusedStepRefusesBadInputAndChangesNothing) {
  TableConfig config = config_for(kOptimizers[4], 8);  // row-wise Adagrad: fused on the CPU
  config.placement = embedkit::PlacementPolicy::cpu;
  EmbeddingTable table(config);
  const Batch good = batch(8, 600, 3, false);
  table.train_step(IndexTensor(good.ids), good.grad);
  const std::vector<float> before = everything(table);
  Batch bad = good;
  bad.ids[7] = kRows + 5;
  const auto expect_refused = [&](auto&& step, const std::string& names) {
    try {
      step();
      ADD_FAILURE() << "accepted " << names;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
    }
    EXPECT_TRUE(same_bits(everything(table), before));
    EXPECT_EQ(table.step(), 1);
  };
  const std::string bad_id = "[7] = " + std::to_string(kRows + 5) + " is not in [0, " + std::to_string(kRows) + ")";
  expect_refused([&] { table.train_step(IndexTensor(bad.ids), bad.grad); }, bad_id);
  std::vector<std::int64_t> offsets = {0, 300, 600};
  expect_refused(
      [&] {
        table.train_step_pooled(IndexTensor(bad.ids), offsets, embedkit::PoolingMode::sum, {},
                                std::vector<float>(2 * 8));
      },
      bad_id);
  expect_refused([&] { table.train_step(IndexTensor(good.ids), std::vector<float>(good.grad.size() - 1)); },
                 "grad_out");
}

TEST(FusedStepChoice, SparseGradientsStayUnfused) {
  auto context = sim_context(64 * kMiB);
  EmbeddingTable table(config_for(kOptimizers[3], 8), *context);
  const Batch b = batch(8, 600, 12, false);
  const embedkit::SparseGrad grad = table.sparse_grad(IndexTensor(b.ids), b.grad);
  EXPECT_FALSE(grad.unique_ids.empty());
  table.apply(grad);
  EXPECT_EQ(table.step(), 1);
  EXPECT_EQ(sim_of(*context).fused_steps(), 0);
}

}  // namespace
