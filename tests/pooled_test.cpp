// lookup_pooled against a plain reference in double precision, typed over the index type: every
// mode, with and without weights, on empty, zero-weight, one-element, huge and padded bags.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/support/tables.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

using embedkit::Array;
using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::PoolingMode;
using embedkit::Status;
using embedkit::TableConfig;
using embedkit::testing::make_table;

constexpr std::uint64_t kSeed = 8;  // the seed of every table here

// The textbook definition, in double: torch.nn.EmbeddingBag / tf.nn.embedding_lookup_sparse. With
// each value, the bound on the error of a float sum taken left to right over the bag (Higham:
// (n - 1)·u·Σ|wᵢ·eᵢ|, then divided like the value), which is what embedkit computes.
struct Expected {
  std::vector<double> values;
  std::vector<double> error_bounds;
};

template <class Index>
Expected reference(const Array<float>& weights, const std::vector<Index>& ids, const std::vector<std::int64_t>& offsets,
                   PoolingMode mode, const std::vector<float>& sample_weights, std::int64_t padding_idx) {
  const std::int64_t dim = weights.shape[1];
  constexpr double kUnitRoundoff = 0x1p-24;
  Expected out;
  for (std::size_t b = 0; b + 1 < offsets.size(); ++b) {
    std::vector<double> sum(dim, 0.0), magnitude(dim, 0.0), max(dim, 0.0);
    double weight_sum = 0, weight_squares = 0, count = 0;
    bool any = false;
    for (std::int64_t j = offsets[b]; j < offsets[b + 1]; ++j) {
      if (ids[j] == padding_idx) continue;
      const double w = sample_weights.empty() ? 1.0 : sample_weights[j];
      weight_sum += w;
      weight_squares += w * w;
      count += 1;
      for (std::int64_t c = 0; c < dim; ++c) {
        const double v = weights.values[ids[j] * dim + c];
        sum[c] += w * v;
        magnitude[c] += std::abs(w * v);
        max[c] = any ? std::max(max[c], v) : v;
      }
      any = true;
    }
    double denominator = 1.0;
    if (mode == PoolingMode::mean) denominator = weight_sum;
    if (mode == PoolingMode::sqrtn) denominator = std::sqrt(weight_squares);
    for (std::int64_t c = 0; c < dim; ++c) {
      const bool zero = denominator == 0;
      out.values.push_back(mode == PoolingMode::max ? max[c] : zero ? 0.0 : sum[c] / denominator);
      const double bound =
          mode == PoolingMode::max || zero ? 0.0 : (count + 2) * kUnitRoundoff * magnitude[c] / std::abs(denominator);
      out.error_bounds.push_back(bound + 1e-7 * std::abs(out.values.back()));
    }
  }
  return out;
}

void expect_close(const std::vector<float>& got, const Expected& expected) {
  ASSERT_EQ(got.size(), expected.values.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], expected.values[i], expected.error_bounds[i]) << "element " << i;
  }
}

template <class Index>
class PooledTest : public ::testing::Test {};
using IndexTypes = ::testing::Types<std::int32_t, std::int64_t>;
TYPED_TEST_SUITE(PooledTest, IndexTypes);

constexpr PoolingMode kModes[] = {PoolingMode::sum, PoolingMode::mean, PoolingMode::max, PoolingMode::sqrtn};

TYPED_TEST(PooledTest, AdversarialBagsEveryMode) {
  const EmbeddingTable table = make_table(50, 7, kSeed, 3);
  // Bags: empty, one element, duplicates, all padding, padding inside, a hot row, empty at the end.
  const std::vector<TypeParam> ids = {9, 4, 4, 4, 3, 3, 1, 3, 2, 7, 7, 7, 7, 7, 0};
  const std::vector<std::int64_t> offsets = {0, 0, 1, 4, 6, 9, 14, 15, 15};
  const auto weights = table.get_weights();
  for (const PoolingMode mode : kModes) {
    const Array<float> out = table.lookup_pooled(IndexTensor(ids), offsets, mode);
    EXPECT_EQ(out.shape, (std::vector<std::int64_t>{8, 7}));
    expect_close(out.values, reference(weights, ids, offsets, mode, {}, 3));
    // Empty bags and the all-padding bag pool to zeros in every mode.
    for (const std::int64_t bag : {0, 3, 7}) {
      for (std::int64_t c = 0; c < 7; ++c) EXPECT_EQ(out.values[bag * 7 + c], 0.0f) << to_string(mode);
    }
  }
}

TYPED_TEST(PooledTest, WeightedModesAndZeroWeightBag) {
  const EmbeddingTable table = make_table(20, 5, kSeed);
  const std::vector<TypeParam> ids = {1, 2, 3, 4, 5, 6, 7};
  const std::vector<std::int64_t> offsets = {0, 3, 5, 7};
  const std::vector<float> w = {0.5f, 2.0f, -1.0f, 1.0f, -1.0f, 3.0f, 0.25f};  // bag 1 sums to 0
  const auto weights = table.get_weights();
  for (const PoolingMode mode : {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn}) {
    const Array<float> out = table.lookup_pooled(IndexTensor(ids), offsets, mode, w);
    expect_close(out.values, reference(weights, ids, offsets, mode, w, -1));
  }
  const Array<float> mean = table.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::mean, w);
  for (std::int64_t c = 0; c < 5; ++c) EXPECT_EQ(mean.values[5 + c], 0.0f);  // Σw = 0 gives zeros
}

TYPED_TEST(PooledTest, OneElementBagsEqualLookup) {
  const EmbeddingTable table = make_table(100, 16, kSeed);
  std::vector<TypeParam> ids(64);
  std::vector<std::int64_t> offsets(65);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<TypeParam>((i * 37) % 100);
    offsets[i + 1] = static_cast<std::int64_t>(i + 1);
  }
  const auto rows = table.lookup(IndexTensor(ids)).values;
  for (const PoolingMode mode : kModes) {
    EXPECT_EQ(table.lookup_pooled(IndexTensor(ids), offsets, mode).values, rows) << to_string(mode);
  }
}

TYPED_TEST(PooledTest, HugeRandomBagsAndThreadCounts) {
  const EmbeddingTable table = make_table(5000, 64, kSeed);
  std::mt19937_64 rng(4);
  std::vector<std::int64_t> offsets = {0};
  for (int b = 0; b < 600; ++b) offsets.push_back(offsets.back() + static_cast<std::int64_t>(rng() % 300));
  offsets.push_back(offsets.back() + 20000);  // one huge bag
  std::vector<TypeParam> ids(static_cast<std::size_t>(offsets.back()));
  std::vector<float> w(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<TypeParam>(rng() % 5000);
    w[i] = static_cast<float>(rng() % 1000) / 500.0f;
  }
  const auto weights = table.get_weights();
  const int threads = omp_get_max_threads();
  for (const PoolingMode mode : kModes) {
    const std::vector<float> sample_weights = mode == PoolingMode::max ? std::vector<float>{} : w;
    omp_set_num_threads(1);
    const auto one = table.lookup_pooled(IndexTensor(ids), offsets, mode, sample_weights).values;
    for (const int team : {2, 3, 5}) {  // each team size cuts the bags into other ranges
      omp_set_num_threads(team);
      const auto many = table.lookup_pooled(IndexTensor(ids), offsets, mode, sample_weights).values;
      ASSERT_EQ(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)), 0) << to_string(mode) << ", " << team;
    }
    expect_close(one, reference(weights, ids, offsets, mode, sample_weights, -1));
  }
  omp_set_num_threads(threads);
}

TYPED_TEST(PooledTest, MaskZeroDoesNotChangePooling) {
  TableConfig config;
  config.input_dim = 10;
  config.output_dim = 3;
  config.seed = 1;
  const EmbeddingTable plain(config);
  config.mask_zero = true;
  const EmbeddingTable masked(config);
  const std::vector<TypeParam> ids = {0, 0, 5};
  const std::vector<std::int64_t> offsets = {0, 3};
  EXPECT_EQ(plain.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::mean).values,
            masked.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::mean).values);
}

TYPED_TEST(PooledTest, BadInputsAreNamedAndWriteNothing) {
  const EmbeddingTable table = make_table(10, 2, kSeed);
  const std::vector<TypeParam> ids = {1, 2, 3, 4};
  std::vector<float> out(4, -5.0f);
  const auto expect_error = [&](std::vector<std::int64_t> offsets, std::vector<float> w, PoolingMode mode,
                                Status status, const char* text) {
    try {
      table.lookup_pooled(IndexTensor(ids), offsets, mode, w, out);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), status) << e.what();
      EXPECT_STREQ(e.what(), text);
    }
    EXPECT_EQ(out, std::vector<float>(4, -5.0f));
  };
  expect_error({1, 2, 4}, {}, PoolingMode::sum, Status::invalid_argument, "offsets[0] = 1 must be 0");
  expect_error({0, 3, 2, 4}, {}, PoolingMode::sum, Status::invalid_argument,
               "offsets[2] = 2 is less than offsets[1] = 3; offsets must not decrease");
  expect_error({0, 2, 5}, {}, PoolingMode::sum, Status::invalid_argument,
               "offsets[2] = 5 (the last) must equal the number of indices, 4");
  expect_error({}, {}, PoolingMode::sum, Status::invalid_argument,
               "offsets must hold bags + 1 entries (at least 1), got 0");
  expect_error({0, 2, 4}, {1, 1, 1}, PoolingMode::sum, Status::shape_mismatch,
               "per_sample_weights shape must be (4,), the shape of indices, got (3,)");
  expect_error({0, 2, 4}, {1, 1, 1, 1}, PoolingMode::max, Status::invalid_argument,
               "per_sample_weights are not supported with pooling mode 'max'");
  expect_error({0, 4}, {}, PoolingMode::sum, Status::shape_mismatch, "pooled output must hold 1 x 2 floats, got 4");
  const std::vector<TypeParam> bad = {1, 2, 10, 4};
  try {
    table.lookup_pooled(IndexTensor(bad), std::vector<std::int64_t>{0, 2, 4}, PoolingMode::sum, {}, out);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_range);
    EXPECT_STREQ(e.what(), "indices[2] = 10 is not in [0, 10)");
  }
  EXPECT_EQ(out, std::vector<float>(4, -5.0f));
  try {
    table.lookup_pooled(IndexTensor(ids.data(), {2, 2}), std::vector<std::int64_t>{0, 4}, PoolingMode::sum);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::shape_mismatch);
    EXPECT_STREQ(e.what(), "pooled lookup indices must be 1-D, got shape (2, 2)");
  }
  EXPECT_THROW(embedkit::parse_pooling_mode("avg"), Error);
}

TEST(PooledZeroFill, OutOfRangeIdsCountAsZeroRows) {
  TableConfig config;
  config.input_dim = 5;
  config.output_dim = 2;
  config.bounds_check = embedkit::BoundsCheck::zero_fill;
  config.embeddings_initializer = embedkit::Initializer::from_name("ones");
  const EmbeddingTable table(config);
  const std::vector<std::int64_t> ids = {1, 99};
  const std::vector<std::int64_t> offsets = {0, 2};
  EXPECT_EQ(table.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::mean).values, (std::vector<float>{0.5f, 0.5f}));
  EXPECT_EQ(table.out_of_range_count(), 1);
}

TEST(FromPretrained, CopiesMatrixAndSetsTrainable) {
  Array<float> matrix{{3, 2}, {1, 2, 3, 4, 5, 6}};
  const EmbeddingTable frozen = EmbeddingTable::from_pretrained(matrix, false);
  EXPECT_EQ(frozen.input_dim(), 3);
  EXPECT_EQ(frozen.output_dim(), 2);
  EXPECT_FALSE(frozen.trainable());
  EXPECT_EQ(frozen.get_weights().values, matrix.values);
  TableConfig config;
  config.input_dim = 4;
  try {
    EmbeddingTable::from_pretrained(matrix, true, config);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::shape_mismatch);
    EXPECT_STREQ(e.what(), "table 'embedding' weight shape (4, 2) is not compatible with provided weight shape (3, 2)");
  }
}

}  // namespace
