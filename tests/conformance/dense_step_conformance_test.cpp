// Steps under lazy = false (Keras's semantics: its dense gradient, every row stepped) on every
// backend present, for every built-in optimizer: train_step, train_step_pooled and apply bit for
// bit the CPU's, both id types, dims that fuse and do not, within tolerance of the reference
// trainer stepping every row; rows the step did not touch move where Keras moves them (momentum,
// Adam's moments, FTRL's reset, weight decay, a regularizer, a constraint) and stay bit for bit
// where a zero gradient moves nothing (plain SGD and Adagrad).
#include "tests/conformance/optimizer_cases.hpp"

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;
using embedkit::EmbeddingTable;
using embedkit::OptimizerKind;
using embedkit::TableConfig;

class DenseStepConformance : public OnBackend {};

TableConfig dense(const Optimizer& optimizer, std::int64_t dim) {
  TableConfig config = optimizer_config(optimizer, dim);
  config.optimizer.lazy = false;
  return config;
}

// Ids of [low, high) only, so the other rows are untouched by the step.
std::vector<std::int64_t> ids_between(std::int64_t low, std::int64_t high, std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> ids(count);
  for (auto& id : ids) id = low + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(high - low));
  return ids;
}

std::vector<float> rows_of(const std::vector<float>& weights, std::int64_t first, std::int64_t end, std::int64_t dim) {
  return {weights.begin() + first * dim, weights.begin() + end * dim};
}

TEST_P(DenseStepConformance, EveryEntryPointMovesEveryRowAsTheCpuAndTheReference) {
  for (const Optimizer& optimizer : kOptimizers) {
    for (const std::int64_t dim : {std::int64_t{1}, std::int64_t{4}, std::int64_t{33}, std::int64_t{300}}) {
      auto table = on_backend(dense(optimizer, dim));
      auto cpu = on_cpu(dense(optimizer, dim));
      reference::Trainer trainer = trainer_of(table);
      const std::string what = std::string(optimizer.name) + ", dim " + std::to_string(dim);
      // Rows 0..29 first, then only rows 50..96: rows 0..29 must still move (every optimizer here has
      // weight decay, a regularizer and a max-norm constraint).
      const auto first = ids_between(0, 30, 300, 1);
      const auto grad = random_values(first.size() * static_cast<std::size_t>(dim), 2);
      const std::vector<std::int32_t> first32(first.begin(), first.end());
      trainer.apply(reference::sparse_grad(matrix_of(table), first, grad));
      table.train_step(IndexTensor(first32), grad);
      cpu.train_step(IndexTensor(first32), grad);
      ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", int32 train_step";
      ASSERT_TRUE(close_to(state_of(table), trainer)) << what << ", int32 train_step";
      const std::vector<float> after_first = table.get_weights().values;

      const auto second = ids_between(50, kRows, 300, 3);
      trainer.apply(reference::sparse_grad(matrix_of(table), second, grad));
      table.train_step(IndexTensor(second), grad);
      cpu.train_step(IndexTensor(second), grad);
      ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", int64 train_step";
      ASSERT_TRUE(close_to(state_of(table), trainer)) << what << ", int64 train_step";
      EXPECT_FALSE(same_bits(rows_of(table.get_weights().values, 0, 30, dim), rows_of(after_first, 0, 30, dim)))
          << what << ": rows the step did not touch stayed as they were";

      const auto offsets = random_offsets(40, 12, 4);
      const auto pooled_ids = random_ids<std::int64_t>(static_cast<std::size_t>(offsets.back()), 5);
      const auto weights = random_values(pooled_ids.size(), 6, 0.5f, 2.0f);
      const auto grad_bags = random_values(40 * static_cast<std::size_t>(dim), 7);
      for (const PoolingMode mode : {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn, PoolingMode::max}) {
        const std::vector<float> w = mode == PoolingMode::max ? std::vector<float>{} : weights;
        table.train_step_pooled(IndexTensor(pooled_ids), offsets, mode, w, grad_bags);
        cpu.train_step_pooled(IndexTensor(pooled_ids), offsets, mode, w, grad_bags);
        ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", train_step_pooled " << to_string(mode);
      }

      trainer = trainer_of(table);
      SparseGrad sparse;
      sparse.dim = dim;
      sparse.unique_ids = {3, kHot, 60};
      sparse.rows = random_values(3 * static_cast<std::size_t>(dim), 8);
      table.apply(sparse);
      cpu.apply(sparse);
      trainer.apply(sparse);
      ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", apply";
      ASSERT_TRUE(close_to(state_of(table), trainer)) << what << ", apply";
      SparseGrad none;
      none.dim = dim;
      const std::vector<float> before_empty = table.get_weights().values;
      table.apply(none);
      cpu.apply(none);
      trainer.apply(none);
      EXPECT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", an empty gradient";
      EXPECT_TRUE(close_to(state_of(table), trainer)) << what << ", an empty gradient";
      EXPECT_FALSE(same_bits(table.get_weights().values, before_empty)) << what << ": an empty step moved nothing";
    }
  }
}

// Without weight decay, regularizer or constraint, what a zero gradient does is the optimizer's own:
// momentum SGD, Nesterov and Adam keep moving rows an earlier step touched (their velocity and
// moments decay); FTRL resets rows no step touched yet (its linear term starts at 0) and recomputes
// the others to the same bits; plain SGD, Adagrad and row-wise Adagrad leave untouched rows bit for
// bit (their lazy: false step is the sparse one).
TEST_P(DenseStepConformance, UntouchedRowsMoveExactlyWhereTheOptimizerMovesThem) {
  for (const Optimizer& optimizer : kOptimizers) {
    TableConfig config = dense(optimizer, 5);
    config.optimizer.weight_decay.reset();
    config.embeddings_regularizer.reset();
    config.embeddings_constraint = {};
    auto table = on_backend(config);
    reference::Trainer trainer = trainer_of(table);
    const bool decays = optimizer.momentum != 0 || optimizer.kind == OptimizerKind::adam;
    const bool resets = optimizer.kind == OptimizerKind::ftrl;
    EXPECT_EQ(table.summary().dense_step, decays || resets) << optimizer.name;
    const std::vector<float> initial = table.get_weights().values;
    std::vector<std::vector<float>> after;
    for (std::int64_t band = 0; band < 2; ++band) {  // ids of [0, 40), then of [40, 80)
      const auto ids = ids_between(40 * band, 40 * band + 40, 60, static_cast<std::uint64_t>(band) + 20);
      const auto grad = random_values(ids.size() * 5, static_cast<std::uint64_t>(band) + 30);
      trainer.apply(reference::sparse_grad(matrix_of(table), ids, grad));
      table.train_step(IndexTensor(ids), grad);
      ASSERT_TRUE(close_to(state_of(table), trainer)) << optimizer.name << ", band " << band;
      after.push_back(table.get_weights().values);
    }
    EXPECT_EQ(!same_bits(rows_of(after[1], 0, 40, 5), rows_of(after[0], 0, 40, 5)), decays)
        << optimizer.name << ": rows the first step touched, in the second";
    EXPECT_EQ(!same_bits(rows_of(after[0], 80, kRows, 5), rows_of(initial, 80, kRows, 5)), resets)
        << optimizer.name << ": rows no step touched yet";
  }
}

INSTANTIATE_TEST_SUITE_P(On, DenseStepConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
