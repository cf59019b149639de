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
  EXPECT_EQ(TableConfig{}.embeddings_initializer.name, "uniform");
  EXPECT_EQ(TableConfig{}.embeddings_initializer.kind, embedkit::InitializerKind::uniform);
  EXPECT_EQ(TableConfig{}.embeddings_initializer.minval, -0.05);
  EXPECT_EQ(TableConfig{}.embeddings_initializer.maxval, 0.05);
}

// What Keras's initializer gives a (1000, 100) matrix: fan_in 1000, fan_out 100, fan_avg 550.
struct Law {
  const char* name;
  double bound;  // every |value - mean| <= bound (0: unbounded)
  double mean;
  double stddev;  // of the values actually drawn
};

constexpr double kTruncation = 0.87962566103423978;  // sd of a unit normal truncated to [-2, 2]

const Law kLaws[] = {
    {"uniform", 0.05, 0.0, 0.05 / 1.7320508075688772},
    {"random_normal", 0.0, 0.0, 0.05},
    {"truncated_normal", 0.1, 0.0, 0.05 * kTruncation},
    {"zeros", 0.0, 0.0, 0.0},
    {"ones", 0.0, 1.0, 0.0},
    {"glorot_uniform", 0.07385489458759964, 0.0, 0.07385489458759964 / 1.7320508075688772},  // sqrt(6/1100)
    {"glorot_normal", 2.0 * 0.04264014327112209 / kTruncation, 0.0, 0.04264014327112209},    // sqrt(1/550)
    {"he_uniform", 0.07745966692414834, 0.0, 0.07745966692414834 / 1.7320508075688772},      // sqrt(6/1000)
    {"he_normal", 2.0 * 0.044721359549995794 / kTruncation, 0.0, 0.044721359549995794},      // sqrt(2/1000)
    {"lecun_uniform", 0.05477225575051661, 0.0, 0.05477225575051661 / 1.7320508075688772},   // sqrt(3/1000)
    {"lecun_normal", 2.0 * 0.03162277660168379 / kTruncation, 0.0, 0.03162277660168379},     // sqrt(1/1000)
    {"variance_scaling", 2.0 * 0.03162277660168379 / kTruncation, 0.0, 0.03162277660168379},
};

class InitializerLaw : public ::testing::TestWithParam<Law> {};

TEST_P(InitializerLaw, RangeAndMomentsOverALargeTable) {
  const Law& law = GetParam();
  const Moments m = moments(EmbeddingTable(make_config(1000, 100, law.name, 21)).get_weights().values);
  // 100,000 draws: the sample mean is within ~4 standard errors, the sample sd within ~1.5%.
  EXPECT_NEAR(m.mean, law.mean, 4.0 * law.stddev / std::sqrt(1e5) + 1e-12);
  EXPECT_NEAR(m.stddev, law.stddev, 0.015 * law.stddev + 1e-12);
  if (law.bound > 0) {
    EXPECT_GE(m.min, law.mean - law.bound);
    EXPECT_LE(m.max, law.mean + law.bound);
    EXPECT_LT(m.min, law.mean - 0.95 * law.bound);  // the range is used to its ends
    EXPECT_GT(m.max, law.mean + 0.95 * law.bound);
  } else if (law.stddev > 0) {
    EXPECT_LT(m.min, law.mean - 3.5 * law.stddev);  // an untruncated normal has tails
  }
}

TEST_P(InitializerLaw, BitwiseEqualOnOneAndTwoThreads) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = EmbeddingTable(make_config(3000, 64, GetParam().name, 13)).get_weights().values;
  omp_set_num_threads(2);
  const auto two = EmbeddingTable(make_config(3000, 64, GetParam().name, 13)).get_weights().values;
  omp_set_num_threads(threads);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(Keras, InitializerLaw, ::testing::ValuesIn(kLaws),
                         [](const ::testing::TestParamInfo<Law>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(Initializer, Constant) {
  TableConfig config = make_config(10, 3, "constant", 1);
  config.embeddings_initializer.value = 0.25;
  EXPECT_EQ(EmbeddingTable(config).get_weights().values, std::vector<float>(30, 0.25f));
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
  for (const char* name :
       {"uniform", "RandomUniform", "random_uniform", "normal", "RandomNormal", "TruncatedNormal", "truncated_normal",
        "zeros", "Zeros", "ones", "Ones", "constant", "GlorotUniform", "glorot_normal", "HeUniform", "he_normal",
        "LecunUniform", "lecun_normal", "VarianceScaling"}) {
    EXPECT_NO_THROW(Initializer::from_name(name)) << name;
  }
  EXPECT_THROW(Initializer::from_name("Orthogonal"), embedkit::Error);
  EXPECT_THROW(Initializer::from_name("xavier"), embedkit::Error);
}

}  // namespace
