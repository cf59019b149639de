// sparse_grad_pooled: exact values on small bags, and agreement with finite differences of the
// forward lookup_pooled for every mode (loss = Σ grad_bags · pooled output).
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/support/tables.hpp"

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::PoolingMode;
using embedkit::SparseGrad;
using embedkit::testing::make_table;

constexpr std::uint64_t kSeed = 12;  // the seed of every table here

TEST(PooledGrad, ExactValuesPerMode) {
  EmbeddingTable table = make_table(4, 2, kSeed, 0);
  table.set_weights(std::vector<float>{0, 0, 1, 5, 3, 2, 3, -1}, std::vector<std::int64_t>{4, 2});
  // One bag [1, 2, 0, 3, 2]: 0 is padding; rows 1 = (1, 5), 2 = (3, 2), 3 = (3, -1).
  const std::vector<std::int64_t> ids = {1, 2, 0, 3, 2};
  const std::vector<std::int64_t> offsets = {0, 5};
  const std::vector<float> g = {1.0f, 10.0f};
  const auto grad = [&](PoolingMode mode, std::vector<float> w = {}) {
    return table.sparse_grad_pooled(IndexTensor(ids), offsets, mode, w, g);
  };
  const SparseGrad sum = grad(PoolingMode::sum);
  EXPECT_EQ(sum.unique_ids, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(sum.rows, (std::vector<float>{1, 10, 2, 20, 1, 10}));  // id 2 twice
  const SparseGrad mean = grad(PoolingMode::mean);                 // 4 counted entries
  EXPECT_EQ(mean.rows, (std::vector<float>{0.25f, 2.5f, 0.5f, 5, 0.25f, 2.5f}));
  const SparseGrad weighted = grad(PoolingMode::sqrtn, {2, 1, 9, 2, 1});  // √(4+1+4+1) = √10
  const float s = 1.0f / std::sqrt(10.0f);
  EXPECT_NEAR(weighted.rows[0], 2 * s, 1e-6f);
  EXPECT_NEAR(weighted.rows[2], (1 + 1) * s, 1e-6f);
  // max: column 0 is 3 at positions 1, 3, 4: the first (position 1, id 2) takes it; column 1 is 5 at id 1.
  const SparseGrad max = grad(PoolingMode::max);
  EXPECT_EQ(max.unique_ids, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(max.rows, (std::vector<float>{0, 10, 1, 0, 0, 0}));
}

class FiniteDifferences : public ::testing::TestWithParam<PoolingMode> {};

TEST_P(FiniteDifferences, GradientMatchesTheForward) {
  const PoolingMode mode = GetParam();
  constexpr std::int64_t kRows = 30, kDim = 4;
  EmbeddingTable table = make_table(kRows, kDim, kSeed, 5);
  // Values of one column 0.1 apart across rows, so a step of 0.01 never changes a bag's argmax.
  std::vector<float> weights(kRows * kDim);
  for (std::int64_t r = 0; r < kRows; ++r) {
    for (std::int64_t c = 0; c < kDim; ++c)
      weights[r * kDim + c] = static_cast<float>((r * 7 + c * 13) % 31) * 0.1f - 1.5f;
  }
  table.set_weights(weights, std::vector<std::int64_t>{kRows, kDim});
  std::mt19937_64 rng(3);
  std::vector<std::int64_t> offsets = {0};
  for (int b = 0; b < 12; ++b) offsets.push_back(offsets.back() + static_cast<std::int64_t>(rng() % 6));
  std::vector<std::int64_t> ids(static_cast<std::size_t>(offsets.back()));
  for (auto& id : ids) id = static_cast<std::int64_t>(rng() % kRows);
  std::vector<float> w;
  if (mode != PoolingMode::max) {
    for (std::size_t i = 0; i < ids.size(); ++i) w.push_back(0.25f + static_cast<float>(rng() % 8) / 4.0f);
  }
  std::vector<float> g(static_cast<std::size_t>(12 * kDim));
  for (auto& v : g) v = static_cast<float>(static_cast<int>(rng() % 200) - 100) / 50.0f;
  const auto loss = [&](const EmbeddingTable& t) {
    const auto out = t.lookup_pooled(IndexTensor(ids), offsets, mode, w).values;
    double sum = 0;
    for (std::size_t i = 0; i < out.size(); ++i) sum += static_cast<double>(g[i]) * out[i];
    return sum;
  };
  const SparseGrad grad = table.sparse_grad_pooled(IndexTensor(ids), offsets, mode, w, g);
  constexpr float kStep = 1e-2f;
  for (std::int64_t id = 0; id < kRows; ++id) {
    const auto found = std::find(grad.unique_ids.begin(), grad.unique_ids.end(), id);
    for (std::int64_t c = 0; c < kDim; ++c) {
      std::vector<float> row = table.row(id);
      const float original = row[c];
      row[c] = original + kStep;
      table.set_row(id, row);
      const double up = loss(table);
      row[c] = original - kStep;
      table.set_row(id, row);
      const double down = loss(table);
      row[c] = original;
      table.set_row(id, row);
      const double numeric = (up - down) / (2 * kStep);
      const double analytic =
          found == grad.unique_ids.end() ? 0.0 : grad.rows[(found - grad.unique_ids.begin()) * kDim + c];
      EXPECT_NEAR(analytic, numeric, 2e-3 * (1 + std::abs(numeric))) << "id " << id << " column " << c;
    }
  }
  EXPECT_TRUE(std::find(grad.unique_ids.begin(), grad.unique_ids.end(), 5) == grad.unique_ids.end());  // padding
}

INSTANTIATE_TEST_SUITE_P(Modes, FiniteDifferences,
                         ::testing::Values(PoolingMode::sum, PoolingMode::mean, PoolingMode::max, PoolingMode::sqrtn),
                         [](const ::testing::TestParamInfo<PoolingMode>& param_info) {
                           return std::string(embedkit::to_string(param_info.param));
                         });

TEST(PooledGrad, BitwiseEqualOnOneAndTwoThreads) {
  const EmbeddingTable table = make_table(5000, 16, kSeed);
  std::mt19937_64 rng(9);
  std::vector<std::int64_t> offsets = {0};
  for (int b = 0; b < 4000; ++b) offsets.push_back(offsets.back() + static_cast<std::int64_t>(rng() % 64));
  std::vector<std::int64_t> ids(static_cast<std::size_t>(offsets.back()));
  for (auto& id : ids) id = rng() % 5 == 0 ? 11 : static_cast<std::int64_t>(rng() % 5000);
  std::vector<float> w(ids.size()), g(4000 * 16);
  for (auto& v : w) v = static_cast<float>(rng() % 100) / 50.0f;
  for (auto& v : g) v = static_cast<float>(static_cast<int>(rng() % 200) - 100) / 50.0f;
  const int threads = omp_get_max_threads();
  for (const PoolingMode mode : {PoolingMode::sum, PoolingMode::mean, PoolingMode::max, PoolingMode::sqrtn}) {
    const std::vector<float> weights = mode == PoolingMode::max ? std::vector<float>{} : w;
    omp_set_num_threads(1);
    const SparseGrad one = table.sparse_grad_pooled(IndexTensor(ids), offsets, mode, weights, g);
    omp_set_num_threads(2);
    const SparseGrad two = table.sparse_grad_pooled(IndexTensor(ids), offsets, mode, weights, g);
    EXPECT_EQ(one.unique_ids, two.unique_ids);
    ASSERT_EQ(one.rows.size(), two.rows.size());
    EXPECT_EQ(std::memcmp(one.rows.data(), two.rows.data(), one.rows.size() * sizeof(float)), 0)
        << embedkit::to_string(mode);
  }
  omp_set_num_threads(threads);
}

// Without per-sample weights the CPU folds by bag (cpu::group_bags), with them by position: weights
// of one must give the same bits, in the gradient and in a train step, for a hot id split into
// pieces, padding, empty bags and both index types.
TEST(PooledGrad, NoWeightsGiveTheBitsOfWeightsOfOne) {
  std::mt19937_64 rng(21);
  std::vector<std::int64_t> offsets = {0};
  for (int b = 0; b < 3000; ++b) offsets.push_back(offsets.back() + static_cast<std::int64_t>(rng() % 48));
  std::vector<std::int64_t> ids(static_cast<std::size_t>(offsets.back()));
  for (auto& id : ids) {
    const std::uint64_t draw = rng() % 10;
    id = draw < 3 ? 11 : draw == 3 ? 0 : static_cast<std::int64_t>(rng() % 5000);  // hot 11, padding 0
  }
  std::vector<std::int32_t> narrow(ids.begin(), ids.end());
  std::vector<float> g(3000 * 8);
  for (auto& v : g) v = static_cast<float>(static_cast<int>(rng() % 2000) - 1000) / 777.0f;
  const std::vector<float> ones(ids.size(), 1.0f);
  for (const PoolingMode mode : {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn}) {
    for (const IndexTensor& indices : {IndexTensor(ids), IndexTensor(narrow)}) {
      EmbeddingTable plain = make_table(5000, 8, kSeed, 0), weighted = make_table(5000, 8, kSeed, 0);
      const SparseGrad by_bag = plain.sparse_grad_pooled(indices, offsets, mode, {}, g);
      const SparseGrad by_position = weighted.sparse_grad_pooled(indices, offsets, mode, ones, g);
      EXPECT_EQ(by_bag.unique_ids, by_position.unique_ids);
      ASSERT_EQ(by_bag.rows.size(), by_position.rows.size());
      EXPECT_EQ(std::memcmp(by_bag.rows.data(), by_position.rows.data(), by_bag.rows.size() * sizeof(float)), 0)
          << embedkit::to_string(mode);
      plain.train_step_pooled(indices, offsets, mode, {}, g);
      weighted.train_step_pooled(indices, offsets, mode, ones, g);
      EXPECT_EQ(plain.get_weights().values, weighted.get_weights().values) << embedkit::to_string(mode);
    }
  }
}

TEST(PooledGrad, TrainStepPooledEqualsApplyOfTheGradient) {
  EmbeddingTable a = make_table(20, 3, kSeed), b = make_table(20, 3, kSeed);
  const std::vector<std::int32_t> ids = {3, 4, 3, 19, 0};
  const std::vector<std::int64_t> offsets = {0, 3, 3, 5};
  const std::vector<float> g = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  a.train_step_pooled(IndexTensor(ids), offsets, PoolingMode::mean, {}, g);
  b.apply(b.sparse_grad_pooled(IndexTensor(ids), offsets, PoolingMode::mean, {}, g));
  EXPECT_EQ(a.get_weights().values, b.get_weights().values);
  EXPECT_EQ(a.step(), 1);
  EXPECT_THROW(a.train_step_pooled(IndexTensor(ids), offsets, PoolingMode::mean, {}, std::vector<float>(8)),
               embedkit::Error);
  EXPECT_EQ(a.step(), 1);
}

}  // namespace
