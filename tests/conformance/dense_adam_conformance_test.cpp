// Dense Adam (lazy = false: every row decays every step, Keras's exact Adam) on every backend
// present: train_step, train_step_pooled and apply bit for bit the CPU's, both id types, dims that
// fuse and do not; rows the step did not touch move (the step is dense) and match the CPU's.
#include "tests/conformance/optimizer_cases.hpp"

namespace {

using namespace embedkit::testing::conformance;
using embedkit::EmbeddingTable;
using embedkit::OptimizerKind;
using embedkit::TableConfig;

class DenseAdamConformance : public OnBackend {};

TableConfig dense_adam(std::int64_t dim) {
  TableConfig config = optimizer_config(kOptimizers[5], dim);
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

TEST_P(DenseAdamConformance, EveryEntryPointMovesEveryRowAsTheCpu) {
  for (const std::int64_t dim : {std::int64_t{1}, std::int64_t{4}, std::int64_t{33}, std::int64_t{300}}) {
    auto table = on_backend(dense_adam(dim));
    auto cpu = on_cpu(dense_adam(dim));
    const std::string what = "dim " + std::to_string(dim);
    // Rows 0..29 first, then only rows 50..96: rows 0..29 must still move (their moments decay).
    const auto first = ids_between(0, 30, 300, 1);
    const auto grad = random_values(first.size() * static_cast<std::size_t>(dim), 2);
    const std::vector<std::int32_t> first32(first.begin(), first.end());
    table.train_step(IndexTensor(first32), grad);
    cpu.train_step(IndexTensor(first32), grad);
    ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", int32 train_step";
    const std::vector<float> after_first = table.get_weights().values;

    const auto second = ids_between(50, kRows, 300, 3);
    table.train_step(IndexTensor(second), grad);
    cpu.train_step(IndexTensor(second), grad);
    ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", int64 train_step";
    const std::vector<float> after_second = table.get_weights().values;
    EXPECT_FALSE(same_bits(std::vector<float>(after_second.begin(), after_second.begin() + 30 * dim),
                           std::vector<float>(after_first.begin(), after_first.begin() + 30 * dim)))
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

    SparseGrad sparse;
    sparse.dim = dim;
    sparse.unique_ids = {3, kHot, 60};
    sparse.rows = random_values(3 * static_cast<std::size_t>(dim), 8);
    table.apply(sparse);
    cpu.apply(sparse);
    ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", apply";
    SparseGrad none;
    none.dim = dim;
    table.apply(none);
    cpu.apply(none);
    EXPECT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", an empty gradient";
  }
}

INSTANTIATE_TEST_SUITE_P(On, DenseAdamConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
