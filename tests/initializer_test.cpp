// Initializers: ranges and moments over large tables, and values that depend only on
// (seed, row, column): the same on any thread count and for any table height.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::Initializer;
using embedkit::TableConfig;

TableConfig make_config(std::int64_t rows, std::int64_t dim, const std::string& initializer, std::uint64_t seed) {
  TableConfig config;
  config.input_dim = rows;
  config.output_dim = dim;
  config.embeddings_initializer = Initializer::from_name(initializer);
  config.seed = seed;
  return config;
}

struct Moments {
  double min, max, mean, stddev;
};

Moments moments(const std::vector<float>& values) {
  double sum = 0, squares = 0;
  for (const float v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  for (const float v : values) squares += (v - mean) * (v - mean);
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return {*lo, *hi, mean, std::sqrt(squares / static_cast<double>(values.size()))};
}

TEST(Initializer, DefaultIsKerasUniform) {
  const EmbeddingTable table(make_config(2000, 100, "uniform", 1));
  const Moments m = moments(table.get_weights().values);
  EXPECT_GE(m.min, -0.05);
  EXPECT_LT(m.max, 0.05);
  EXPECT_NEAR(m.mean, 0.0, 0.001);
  EXPECT_NEAR(m.stddev, 0.1 / std::sqrt(12.0), 0.0005);  // sd of U(a, b) is (b - a) / sqrt(12)
  EXPECT_EQ(TableConfig{}.embeddings_initializer.name, "uniform");
}

TEST(Initializer, NormalAndTruncatedNormal) {
  const Moments normal = moments(EmbeddingTable(make_config(2000, 100, "random_normal", 2)).get_weights().values);
  EXPECT_NEAR(normal.mean, 0.0, 0.001);
  EXPECT_NEAR(normal.stddev, 0.05, 0.0005);
  EXPECT_LT(normal.min, -0.15);  // 200k draws of N(0, 0.05) reach beyond 3 sigma
  const Moments truncated = moments(EmbeddingTable(make_config(2000, 100, "truncated_normal", 3)).get_weights().values);
  EXPECT_GE(truncated.min, -0.1);
  EXPECT_LE(truncated.max, 0.1);
  EXPECT_NEAR(truncated.mean, 0.0, 0.001);
  EXPECT_NEAR(truncated.stddev, 0.05 * 0.87962566103423978, 0.0005);  // sd of N truncated at 2 sigma
}

TEST(Initializer, Constants) {
  const auto zeros = EmbeddingTable(make_config(10, 3, "zeros", 1)).get_weights().values;
  EXPECT_EQ(zeros, std::vector<float>(30, 0.0f));
  const auto ones = EmbeddingTable(make_config(10, 3, "ones", 1)).get_weights().values;
  EXPECT_EQ(ones, std::vector<float>(30, 1.0f));
}

TEST(Initializer, VarianceScalingFamiliesUseKerasFans) {
  // fan_in = input_dim = 1000, fan_out = output_dim = 100.
  const Moments glorot = moments(EmbeddingTable(make_config(1000, 100, "glorot_uniform", 4)).get_weights().values);
  const double glorot_limit = std::sqrt(6.0 / 1100.0);
  EXPECT_GE(glorot.min, -glorot_limit);
  EXPECT_LE(glorot.max, glorot_limit);
  EXPECT_GT(glorot.max, 0.99 * glorot_limit);
  const Moments he = moments(EmbeddingTable(make_config(1000, 100, "he_normal", 5)).get_weights().values);
  EXPECT_NEAR(he.stddev, std::sqrt(2.0 / 1000.0), 0.02 * std::sqrt(2.0 / 1000.0));
  EXPECT_LE(he.max, 2.0 * std::sqrt(2.0 / 1000.0) / 0.87962566103423978 + 1e-6);
  const Moments lecun = moments(EmbeddingTable(make_config(1000, 100, "lecun_uniform", 6)).get_weights().values);
  EXPECT_LE(lecun.max, std::sqrt(3.0 / 1000.0));
  EXPECT_NEAR(lecun.stddev, std::sqrt(1.0 / 1000.0), 0.02 * std::sqrt(1.0 / 1000.0));
}

TEST(Initializer, SameSeedSameMatrixDifferentSeedDifferent) {
  const auto a = EmbeddingTable(make_config(300, 16, "normal", 9)).get_weights().values;
  const auto b = EmbeddingTable(make_config(300, 16, "normal", 9)).get_weights().values;
  const auto c = EmbeddingTable(make_config(300, 16, "normal", 10)).get_weights().values;
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Initializer, ValueDependsOnlyOnSeedRowColumn) {
  // A shorter table is a prefix of a taller one: what a shard of rows would compute alone.
  const auto tall = EmbeddingTable(make_config(500, 8, "truncated_normal", 12)).get_weights().values;
  const auto short_table = EmbeddingTable(make_config(100, 8, "truncated_normal", 12)).get_weights().values;
  EXPECT_TRUE(std::equal(short_table.begin(), short_table.end(), tall.begin()));
}

TEST(Initializer, BitwiseEqualOnOneAndTwoThreads) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = EmbeddingTable(make_config(4000, 64, "uniform", 13)).get_weights().values;
  omp_set_num_threads(2);
  const auto two = EmbeddingTable(make_config(4000, 64, "uniform", 13)).get_weights().values;
  omp_set_num_threads(threads);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
}

TEST(Initializer, InitializerSeedWinsOverTableSeed) {
  TableConfig a = make_config(50, 4, "uniform", 1);
  TableConfig b = make_config(50, 4, "uniform", 2);
  a.embeddings_initializer.seed = 77;
  b.embeddings_initializer.seed = 77;
  EXPECT_EQ(EmbeddingTable(a).get_weights().values, EmbeddingTable(b).get_weights().values);
}

TEST(Initializer, DrawnSeedIsRecordedAndReproduces) {
  TableConfig config = make_config(64, 4, "normal", 0);
  config.seed.reset();
  const EmbeddingTable drawn(config);
  EXPECT_LT(drawn.seed(), std::uint64_t{1} << 53);  // exact in every JSON reader
  config.seed = drawn.seed();
  EXPECT_EQ(EmbeddingTable(config).get_weights().values, drawn.get_weights().values);
  EXPECT_NE(drawn.info_json().find("\"seed\":" + std::to_string(drawn.seed())), std::string::npos);
}

TEST(Initializer, NamesKerasAccepts) {
  for (const char* name : {"uniform", "RandomUniform", "random_uniform", "normal", "RandomNormal",
                           "TruncatedNormal", "truncated_normal", "zeros", "Zeros", "ones", "Ones",
                           "constant", "GlorotUniform", "glorot_normal", "HeUniform", "he_normal",
                           "LecunUniform", "lecun_normal", "VarianceScaling"}) {
    EXPECT_NO_THROW(Initializer::from_name(name)) << name;
  }
  EXPECT_THROW(Initializer::from_name("Orthogonal"), embedkit::Error);
  EXPECT_THROW(Initializer::from_name("xavier"), embedkit::Error);
}

}  // namespace
