// The bits a train run of every optimizer leaves, pinned. Restructuring the code (issue #23) must
// not change one bit of the weights or the optimizer state: these hashes were recorded before it,
// and the checkpoints under golden/checkpoints/ were written by that code, so they also prove that
// old checkpoints still load. Regenerate (only for an intended change of results, said so in the
// commit) with EMBEDKIT_GOLDEN_WRITE=<source dir>/tests/golden ./table_test --gtest_filter='GoldenBits.*'.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::PoolingMode;
using embedkit::TableConfig;

struct Expected {
  const char* name;
  std::uint64_t weights;
  std::uint64_t state;
  std::uint64_t penalty;  // regularization_loss()'s bits
  std::int64_t step;
};

constexpr Expected kExpected[] = {
#include "train_bits.inc"
};

constexpr std::int64_t kRows = 200, kDim = 20, kSteps = 12;

// FNV-1a over the bytes: any changed bit changes the hash.
std::uint64_t fnv1a(const void* data, std::size_t bytes, std::uint64_t hash = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 1099511628211ull;
  return hash;
}

std::uint64_t hash_weights(const EmbeddingTable& table) {
  const auto weights = table.get_weights();
  return fnv1a(weights.values.data(), weights.values.size() * sizeof(float));
}

std::uint64_t hash_state(const EmbeddingTable& table) {
  std::uint64_t hash = 1469598103934665603ull;
  for (const auto& name : table.optimizer_state_names()) {
    hash = fnv1a(name.data(), name.size(), hash);
    const auto slot = table.optimizer_state(name);
    hash = fnv1a(slot.values.data(), slot.values.size() * sizeof(float), hash);
  }
  return hash;
}

struct Case {
  std::string name;
  TableConfig config;
  bool checkpoint = true;  // a custom optimizer's table cannot be saved
};

std::vector<Case> cases() {
  auto base = [](std::uint64_t seed, OptimizerConfig optimizer) {
    TableConfig config;
    config.input_dim = kRows;
    config.output_dim = kDim;
    config.seed = seed;
    config.padding_idx = 3;
    config.placement = embedkit::PlacementPolicy::cpu;
    config.optimizer = optimizer;
    return config;
  };
  std::vector<Case> all;
  all.push_back({"sgd", base(11, OptimizerConfig::defaults(OptimizerKind::sgd))});
  auto momentum = OptimizerConfig::defaults(OptimizerKind::sgd);
  momentum.momentum = 0.9;
  momentum.nesterov = true;
  momentum.weight_decay = 0.01;
  all.push_back({"sgd_nesterov_decay", base(12, momentum)});
  auto adagrad = base(13, OptimizerConfig::defaults(OptimizerKind::adagrad));
  adagrad.embeddings_regularizer = embedkit::Regularizer{0.001, 0.01};
  adagrad.embeddings_constraint = {embedkit::ConstraintKind::max_norm, 0.5};
  all.push_back({"adagrad_l1l2_maxnorm", adagrad});
  all.push_back({"rowwise_adagrad", base(14, OptimizerConfig::defaults(OptimizerKind::rowwise_adagrad))});
  auto adam = OptimizerConfig::defaults(OptimizerKind::adam);
  adam.learning_rate = 0.01;
  all.push_back({"adam_lazy", base(15, adam)});
  adam.lazy = false;
  auto dense = base(16, adam);
  dense.embeddings_constraint = {embedkit::ConstraintKind::non_neg, 2.0};
  all.push_back({"adam_dense_nonneg", dense});
  auto ftrl = OptimizerConfig::defaults(OptimizerKind::ftrl);
  ftrl.learning_rate = 0.05;
  ftrl.l1_regularization_strength = 0.001;
  ftrl.l2_regularization_strength = 0.01;
  ftrl.l2_shrinkage_regularization_strength = 0.001;
  ftrl.beta = 0.1;
  auto ftrl_config = base(17, ftrl);
  ftrl_config.embeddings_constraint = {embedkit::ConstraintKind::unit_norm, 2.0};
  all.push_back({"ftrl_unitnorm", ftrl_config});
  // The other non-finite policies, a max_value float32 cannot hold exactly, weight decay with a
  // row statistic, and a custom update with its state and the constraint after it.
  auto sgd_apply_config = base(18, momentum);
  sgd_apply_config.nonfinite_gradients = embedkit::NonFiniteGradients::apply;
  sgd_apply_config.embeddings_regularizer = embedkit::Regularizer{0.0, 0.01};
  sgd_apply_config.embeddings_constraint = {embedkit::ConstraintKind::max_norm, 0.3};
  all.push_back({"sgd_apply_policy_maxnorm03", sgd_apply_config});
  auto adam_error = base(19, OptimizerConfig::defaults(OptimizerKind::adam));
  adam_error.nonfinite_gradients = embedkit::NonFiniteGradients::error;
  adam_error.embeddings_constraint = {embedkit::ConstraintKind::unit_norm, 2.0};
  all.push_back({"adam_error_policy_unitnorm", adam_error});
  auto rowwise = OptimizerConfig::defaults(OptimizerKind::rowwise_adagrad);
  rowwise.weight_decay = 0.02;
  auto rowwise_config = base(20, rowwise);
  rowwise_config.embeddings_constraint = {embedkit::ConstraintKind::non_neg, 2.0};
  rowwise_config.embeddings_regularizer = embedkit::Regularizer{0.003, 0.0};
  all.push_back({"rowwise_adagrad_decay_nonneg", rowwise_config});
  auto custom = base(21, OptimizerConfig::custom(
                             [](std::int64_t, float* w, const float* g, float* state, int dim) {
                               for (int c = 0; c < dim; ++c) w[c] -= 0.1f * g[c] + 0.01f * state[0];
                               state[0] += g[0];
                               state[1] = w[0];
                             },
                             2));
  custom.embeddings_constraint = {embedkit::ConstraintKind::max_norm, 0.3};
  all.push_back({"custom_state2_maxnorm03", custom, false});
  return all;
}

// Twelve steps: lookups of a 2-D batch and pooled steps of every mode, weighted and not, through
// train_step, train_step_pooled and sparse_grad + apply, with duplicates, a hot row, the padding
// row and a learning-rate change half-way.
void train(EmbeddingTable& table, std::uint64_t seed) {
  std::mt19937_64 bits(seed);
  auto uniform = [&bits](double low, double high) {
    return low + (high - low) * static_cast<double>(bits() >> 11) * 0x1.0p-53;
  };
  auto draw_ids = [&](std::int64_t count) {
    std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
    for (auto& id : ids) {
      const auto roll = bits() % 10;
      id = roll < 3 ? 7 : roll == 3 ? 3 : static_cast<std::int64_t>(bits() % kRows);
    }
    return ids;
  };
  auto draw_floats = [&](std::size_t count) {
    std::vector<float> values(count);
    for (auto& v : values) v = static_cast<float>(uniform(-1.0, 1.0));
    return values;
  };
  const PoolingMode modes[] = {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn, PoolingMode::max};
  for (std::int64_t step = 0; step < kSteps; ++step) {
    if (step == kSteps / 2) table.set_learning_rate(table.optimizer().learning_rate * 0.5);
    switch (step % 3) {
      case 0: {
        const auto ids = draw_ids(6 * 7);
        const IndexTensor indices(ids.data(), {6, 7});
        const auto grad = draw_floats(ids.size() * kDim);
        table.train_step(indices, grad);
        break;
      }
      case 1: {
        const std::int64_t bags = 9;
        std::vector<std::int64_t> offsets{0};
        for (std::int64_t b = 0; b < bags; ++b)
          offsets.push_back(offsets.back() + static_cast<std::int64_t>(bits() % 6));
        const auto ids = draw_ids(offsets.back());
        const auto mode = modes[(step / 3) % 4];
        const auto weights = mode != PoolingMode::max && step % 2 == 1 ? draw_floats(ids.size()) : std::vector<float>{};
        const auto grad = draw_floats(static_cast<std::size_t>(bags * kDim));
        table.train_step_pooled(IndexTensor(std::span<const std::int64_t>(ids)), offsets, mode, weights, grad);
        break;
      }
      default: {
        std::vector<std::int32_t> ids(25);
        for (auto& id : ids) id = static_cast<std::int32_t>(draw_ids(1)[0]);
        const auto grad = draw_floats(ids.size() * kDim);
        table.apply(table.sparse_grad(IndexTensor(std::span<const std::int32_t>(ids)), grad));
        break;
      }
    }
  }
}

std::filesystem::path golden_dir() { return std::filesystem::path(EMBEDKIT_GOLDEN_DIR); }

TEST(GoldenBits, EveryOptimizerTrainsToTheRecordedBitsAndItsOldCheckpointLoadsToThem) {
  const char* write_to = std::getenv("EMBEDKIT_GOLDEN_WRITE");
  std::string recorded;
  std::size_t index = 0;
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    EmbeddingTable table(c.config);
    train(table, 1000 + index);
    table.apply_constraints();  // every row, not only the touched ones
    const std::uint64_t weights = hash_weights(table), state = hash_state(table);
    const double loss = table.regularization_loss();
    std::uint64_t penalty = 0;
    std::memcpy(&penalty, &loss, sizeof penalty);
    if (write_to != nullptr) {
      char line[200];
      std::snprintf(line, sizeof line, "{\"%s\", 0x%016llxull, 0x%016llxull, 0x%016llxull, %lld},\n", c.name.c_str(),
                    static_cast<unsigned long long>(weights), static_cast<unsigned long long>(state),
                    static_cast<unsigned long long>(penalty), static_cast<long long>(table.step()));
      recorded += line;
      std::filesystem::create_directories(std::filesystem::path(write_to) / "checkpoints");
      if (c.checkpoint) table.save((std::filesystem::path(write_to) / "checkpoints" / c.name).string());
      ++index;
      continue;
    }
    ASSERT_LT(index, std::size(kExpected));
    const Expected& expected = kExpected[index++];
    ASSERT_EQ(c.name, expected.name);
    EXPECT_EQ(weights, expected.weights) << "the weights after training changed";
    EXPECT_EQ(state, expected.state) << "the optimizer state after training changed";
    EXPECT_EQ(penalty, expected.penalty) << "the regularization loss changed";
    EXPECT_EQ(table.step(), expected.step);

    if (!c.checkpoint) continue;
    const auto loaded = EmbeddingTable::load((golden_dir() / "checkpoints" / c.name).string());
    EXPECT_EQ(hash_weights(loaded), expected.weights) << "the recorded checkpoint loads to other weights";
    EXPECT_EQ(hash_state(loaded), expected.state) << "the recorded checkpoint loads to another state";
    EXPECT_EQ(loaded.step(), expected.step);
  }
  if (write_to != nullptr) {
    std::FILE* file = std::fopen((std::filesystem::path(write_to) / "train_bits.inc").c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs("// Written by train_bits_test.cpp under EMBEDKIT_GOLDEN_WRITE; see there.\n", file);
    std::fputs(recorded.c_str(), file);
    std::fclose(file);
    GTEST_SKIP() << "recorded into " << write_to;
  }
  EXPECT_EQ(index, std::size(kExpected));
}

}  // namespace
