// The benchmark harness's own parts: if the ids or the memory probe were wrong, every figure built on
// them would be too.
#include <gtest/gtest.h>

#include "bench/core/baselines.hpp"
#include "bench/core/id_streams.hpp"
#include "bench/core/peak_memory.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

namespace {

using embedkit::bench::bag_offsets;
using embedkit::bench::draw_ids;
using embedkit::bench::IdDistribution;

TEST(BenchIds, UniformIdsCoverTheTableEvenly) {
  const std::int64_t rows = 100;
  const std::vector<std::int64_t> ids = draw_ids(IdDistribution{0.0}, rows, 100000, 7);
  std::vector<int> counts(rows, 0);
  for (const std::int64_t id : ids) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, rows);
    ++counts[static_cast<std::size_t>(id)];
  }
  for (const int count : counts) EXPECT_NEAR(count, 1000, 150);  // > 4 sigma
}

// P(rank k) = k^-α / H(rows, α); rank k lands on id (k - 1) · 2654435761 mod rows.
TEST(BenchIds, ZipfIdsFollowTheLawOnTheSpreadRanks) {
  const std::int64_t rows = 1000, count = 200000;
  const double alpha = 1.2;
  const std::vector<std::int64_t> ids = draw_ids(IdDistribution{alpha}, rows, count, 11);
  std::map<std::int64_t, int> counts;
  for (const std::int64_t id : ids) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, rows);
    ++counts[id];
  }
  double harmonic = 0.0;
  for (std::int64_t k = 1; k <= rows; ++k) harmonic += std::pow(static_cast<double>(k), -alpha);
  for (std::int64_t k = 1; k <= 3; ++k) {
    const std::int64_t id = static_cast<std::int64_t>(static_cast<std::uint64_t>(k - 1) * 2654435761u % rows);
    const double expected = static_cast<double>(count) * std::pow(static_cast<double>(k), -alpha) / harmonic;
    EXPECT_NEAR(counts[id], expected, 5 * std::sqrt(expected)) << "rank " << k;
  }
  EXPECT_EQ(IdDistribution{alpha}.name(), "zipf1.2");
  EXPECT_EQ(IdDistribution{0.0}.name(), "uniform");
}

TEST(BenchIds, SameSeedSameIds) {
  EXPECT_EQ(draw_ids(IdDistribution{1.05}, 5000, 1000, 3), draw_ids(IdDistribution{1.05}, 5000, 1000, 3));
  EXPECT_NE(draw_ids(IdDistribution{1.05}, 5000, 1000, 3), draw_ids(IdDistribution{1.05}, 5000, 1000, 4));
}

TEST(BenchIds, BagOffsetsAreCsrWithAShortLastBag) {
  EXPECT_EQ(bag_offsets(10, 4), (std::vector<std::int64_t>{0, 4, 8, 10}));
  EXPECT_EQ(bag_offsets(8, 4), (std::vector<std::int64_t>{0, 4, 8}));
  EXPECT_EQ(bag_offsets(0, 4), (std::vector<std::int64_t>{0}));
}

TEST(BenchBaselines, NaiveGatherAndPooledSumMatchAPlainLoop) {
  const std::int64_t rows = 50, dim = 6;
  std::vector<float> matrix(static_cast<std::size_t>(rows * dim));
  for (std::size_t i = 0; i < matrix.size(); ++i) matrix[i] = static_cast<float>(i) * 0.25f;
  const std::vector<std::int64_t> ids = {3, 3, 49, 0, 17, 3, 22};
  std::vector<float> gathered(ids.size() * dim);
  embedkit::bench::naive_gather(matrix.data(), dim, ids, gathered.data());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (std::int64_t c = 0; c < dim; ++c) EXPECT_EQ(gathered[i * dim + c], matrix[ids[i] * dim + c]);
  }
  const std::vector<std::int64_t> offsets = {0, 2, 2, 7};
  std::vector<float> pooled(3 * dim, -1.0f);
  embedkit::bench::naive_pooled_sum(matrix.data(), dim, ids, offsets, pooled.data());
  for (std::int64_t b = 0; b < 3; ++b) {
    for (std::int64_t c = 0; c < dim; ++c) {
      float sum = 0.0f;
      for (std::int64_t j = offsets[b]; j < offsets[b + 1]; ++j) sum += matrix[ids[j] * dim + c];
      EXPECT_EQ(pooled[b * dim + c], sum);
    }
  }
}

TEST(BenchBaselines, NaiveTrainStepIsSgdOnTheFoldedGradient) {
  const std::int64_t dim = 2;
  embedkit::bench::NaiveTrainStep step(std::vector<float>{1, 1, 2, 2, 3, 3}, dim, 0.5f);
  const std::vector<std::int64_t> ids = {0, 2, 2}, offsets = {0, 1, 3};
  std::vector<float> forward(4);
  const std::vector<float> grad = {1, 2, 10, 20};
  step.run(ids, offsets, forward.data(), grad);
  EXPECT_EQ(forward, (std::vector<float>{1, 1, 6, 6}));
  step.run(ids, offsets, forward.data(), grad);  // row 0: 1 - 0.5·1; row 2: 3 - 0.5·(10 + 10)
  EXPECT_EQ(forward, (std::vector<float>{0.5f, 0.0f, -14.0f, -34.0f}));
}

TEST(BenchPeakMemory, SeesABufferTouchedAndFreedInsideTheCall) {
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  const std::int64_t growth = embedkit::bench::peak_resident_growth([] {
    std::vector<char> buffer(kBytes);
    std::memset(buffer.data(), 1, buffer.size());
    EXPECT_EQ(buffer[kBytes / 2], 1);
  });
  if (growth < 0) GTEST_SKIP() << "this kernel does not let /proc/self/clear_refs reset the high-water mark";
  // Resident-set counters are kept per CPU and folded in lazily: allow a few percent below.
  EXPECT_GE(growth, static_cast<std::int64_t>(kBytes / 100 * 95));
  EXPECT_LT(growth, static_cast<std::int64_t>(2 * kBytes));
}

}  // namespace
