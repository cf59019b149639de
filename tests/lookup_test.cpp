// EmbeddingTable::lookup and compute_mask against a plain reference gather, typed over the index
// type, on random and adversarial inputs.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <omp.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace {

using embedkit::Array;
using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::Status;
using embedkit::TableConfig;

TableConfig make_config(std::int64_t rows, std::int64_t dim) {
  TableConfig config;
  config.input_dim = rows;
  config.output_dim = dim;
  config.seed = 42;
  return config;
}

// The obviously correct gather: row by row, element by element.
template <class Index>
std::vector<float> reference_lookup(const Array<float>& weights, const std::vector<Index>& ids,
                                    std::int64_t padding_idx = -1) {
  const std::int64_t rows = weights.shape[0], dim = weights.shape[1];
  std::vector<float> out;
  for (const Index id : ids) {
    for (std::int64_t c = 0; c < dim; ++c) {
      const bool zero = id < 0 || id >= rows || id == padding_idx;
      out.push_back(zero ? 0.0f : weights.values[static_cast<std::size_t>(id * dim + c)]);
    }
  }
  return out;
}

template <class Index>
std::vector<Index> random_ids(std::size_t count, std::int64_t rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> pick(0, rows - 1);
  std::vector<Index> ids(count);
  for (auto& id : ids) id = static_cast<Index>(pick(rng));
  return ids;
}

template <class Index>
class LookupTest : public ::testing::Test {};
using IndexTypes = ::testing::Types<std::int32_t, std::int64_t>;
TYPED_TEST_SUITE(LookupTest, IndexTypes);

TYPED_TEST(LookupTest, KerasDocumentedExample) {
  // Keras's Embedding docstring: W = [[0,0],[2,2],[3,3]], x = [2,1,0].
  TableConfig config = make_config(3, 2);
  config.mask_zero = true;
  EmbeddingTable table(config);
  const std::vector<float> w = {0, 0, 2, 2, 3, 3};
  const std::int64_t shape[] = {3, 2};
  table.set_weights(w, shape);
  const std::vector<TypeParam> x = {2, 1, 0};
  const Array<float> out = table.lookup(IndexTensor(x));
  EXPECT_EQ(out.shape, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(out.values, (std::vector<float>{3, 3, 2, 2, 0, 0}));
  const Array<std::uint8_t> mask = table.compute_mask(IndexTensor(x));
  EXPECT_EQ(mask.values, (std::vector<std::uint8_t>{1, 1, 0}));
}

TYPED_TEST(LookupTest, RandomBatchMatchesReference) {
  EmbeddingTable table(make_config(1000, 37));
  const auto ids = random_ids<TypeParam>(5000, 1000, 1);
  const Array<float> out = table.lookup(IndexTensor(ids));
  EXPECT_EQ(out.shape, (std::vector<std::int64_t>{5000, 37}));
  EXPECT_EQ(out.values, reference_lookup(table.get_weights(), ids));
}

TYPED_TEST(LookupTest, DuplicatesAndOneHotRow) {
  EmbeddingTable table(make_config(50, 8));
  std::vector<TypeParam> ids(4096, 7);                                                      // one hot row...
  for (std::size_t i = 0; i < ids.size(); i += 9) ids[i] = static_cast<TypeParam>(i % 50);  // ...and others
  EXPECT_EQ(table.lookup(IndexTensor(ids)).values, reference_lookup(table.get_weights(), ids));
}

TYPED_TEST(LookupTest, AnyRankIncludingZeroDAndEmpty) {
  EmbeddingTable table(make_config(20, 3));
  const Array<float> weights = table.get_weights();

  const TypeParam scalar = 5;
  const Array<float> zero_d = table.lookup(IndexTensor(&scalar, {}));
  EXPECT_EQ(zero_d.shape, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(zero_d.values, reference_lookup(weights, std::vector<TypeParam>{5}));

  const auto ids = random_ids<TypeParam>(2 * 3 * 4 * 5, 20, 2);
  const Array<float> rank4 = table.lookup(IndexTensor(ids.data(), {2, 3, 4, 5}));
  EXPECT_EQ(rank4.shape, (std::vector<std::int64_t>{2, 3, 4, 5, 3}));
  EXPECT_EQ(rank4.values, reference_lookup(weights, ids));

  const Array<float> empty = table.lookup(IndexTensor(static_cast<const TypeParam*>(nullptr), {0}));
  EXPECT_EQ(empty.shape, (std::vector<std::int64_t>{0, 3}));
  EXPECT_TRUE(empty.values.empty());
  const Array<float> empty2 = table.lookup(IndexTensor(static_cast<const TypeParam*>(nullptr), {4, 0, 2}));
  EXPECT_EQ(empty2.shape, (std::vector<std::int64_t>{4, 0, 2, 3}));
}

TYPED_TEST(LookupTest, PaddingIdxReadsAsZeros) {
  TableConfig config = make_config(10, 4);
  config.padding_idx = 3;
  EmbeddingTable table(config);
  const std::vector<TypeParam> ids = {3, 2, 3, 9, 0};
  EXPECT_EQ(table.lookup(IndexTensor(ids)).values, reference_lookup(table.get_weights(), ids, 3));
  // The row itself keeps its initial values; only lookups read it as zeros (as torch's padding_idx
  // after from_pretrained, the row's storage is the user's business).
  EXPECT_NE(table.row(3), std::vector<float>(4, 0.0f));
}

TYPED_TEST(LookupTest, MaskZeroStillLooksUpRowZero) {
  TableConfig config = make_config(6, 2);
  config.mask_zero = true;
  EmbeddingTable table(config);
  const std::vector<TypeParam> ids = {0, 4, 0, 5};
  const Array<float> out = table.lookup(IndexTensor(ids));
  EXPECT_EQ(out.values, reference_lookup(table.get_weights(), ids));
  EXPECT_EQ(std::vector<float>(out.values.begin(), out.values.begin() + 2), table.row(0));
  EXPECT_EQ(table.compute_mask(IndexTensor(ids)).values, (std::vector<std::uint8_t>{0, 1, 0, 1}));
}

TYPED_TEST(LookupTest, MaskIsAllOnesWithoutMaskZero) {
  EmbeddingTable table(make_config(6, 2));
  const std::vector<TypeParam> ids = {0, 4, 0, 5};
  const Array<std::uint8_t> mask = table.compute_mask(IndexTensor(ids.data(), {2, 2}));
  EXPECT_EQ(mask.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(mask.values, (std::vector<std::uint8_t>{1, 1, 1, 1}));
}

TYPED_TEST(LookupTest, OutOfRangeNamesFirstPositionAndWritesNothing) {
  EmbeddingTable table(make_config(10000, 4));
  std::vector<TypeParam> ids(5 * 8, 1);
  ids[3 * 8 + 7] = 15000;
  ids[4 * 8 + 1] = -3;  // a later bad id: the message names the first one
  std::vector<float> out(ids.size() * 4, -7.0f);
  try {
    table.lookup(IndexTensor(ids.data(), {5, 8}), out);
    FAIL() << "expected an out-of-range error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_range);
    EXPECT_STREQ(e.what(), "indices[3,7] = 15000 is not in [0, 10000)");
  }
  EXPECT_EQ(out, std::vector<float>(out.size(), -7.0f));
}

TYPED_TEST(LookupTest, NegativeAndHugeIdsAreOutOfRange) {
  EmbeddingTable table(make_config(10, 2));
  const std::vector<TypeParam> negative = {1, 2, -1};
  try {
    table.lookup(IndexTensor(negative));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_range);
    EXPECT_STREQ(e.what(), "indices[2] = -1 is not in [0, 10)");
  }
  const std::vector<TypeParam> huge = {std::numeric_limits<TypeParam>::max()};
  EXPECT_THROW(table.lookup(IndexTensor(huge)), Error);
  const std::vector<TypeParam> lowest = {std::numeric_limits<TypeParam>::min()};
  EXPECT_THROW(table.lookup(IndexTensor(lowest)), Error);
  const TypeParam scalar = 10;
  try {
    table.lookup(IndexTensor(&scalar, {}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "indices = 10 is not in [0, 10)");
  }
}

TYPED_TEST(LookupTest, ZeroFillReadsZerosAndCounts) {
  TableConfig config = make_config(10, 3);
  config.bounds_check = embedkit::BoundsCheck::zero_fill;
  EmbeddingTable table(config);
  const std::vector<TypeParam> ids = {1, 10, -1, 9, std::numeric_limits<TypeParam>::max()};
  EXPECT_EQ(table.lookup(IndexTensor(ids)).values, reference_lookup(table.get_weights(), ids));
  EXPECT_EQ(table.out_of_range_count(), 3);
  table.lookup(IndexTensor(ids));
  EXPECT_EQ(table.out_of_range_count(), 6);
}

TYPED_TEST(LookupTest, WrongOutputSizeIsShapeMismatch) {
  EmbeddingTable table(make_config(10, 3));
  const std::vector<TypeParam> ids = {1, 2};
  std::vector<float> out(5, -1.0f);
  try {
    table.lookup(IndexTensor(ids), out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::shape_mismatch);
  }
  EXPECT_EQ(out, std::vector<float>(5, -1.0f));
  std::vector<std::uint8_t> mask(3);
  EXPECT_THROW(table.compute_mask(IndexTensor(ids), mask), Error);
}

TYPED_TEST(LookupTest, BitwiseEqualOnOneAndTwoThreads) {
  // Large enough that the OpenMP loops really split.
  EmbeddingTable table(make_config(20000, 64));
  const auto ids = random_ids<TypeParam>(1 << 16, 20000, 3);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Array<float> one = table.lookup(IndexTensor(ids));
  omp_set_num_threads(2);
  const Array<float> two = table.lookup(IndexTensor(ids));
  omp_set_num_threads(threads);
  ASSERT_EQ(one.values.size(), two.values.size());
  EXPECT_EQ(std::memcmp(one.values.data(), two.values.data(), one.values.size() * sizeof(float)), 0);
  EXPECT_EQ(one.values, reference_lookup(table.get_weights(), ids));
}

TEST(IndexTensor, RejectsBadShapes) {
  const std::int64_t id = 0;
  try {
    IndexTensor(&id, {2, -1});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::invalid_argument);
    EXPECT_STREQ(e.what(), "indices has a negative dimension: shape[1] = -1");
  }
  const std::int64_t big = std::int64_t{1} << 40;
  EXPECT_THROW(IndexTensor(&id, {big, big}), Error);
  EXPECT_THROW(IndexTensor(static_cast<const std::int64_t*>(nullptr), {3}), Error);
  EXPECT_EQ(IndexTensor(&id, {big, big, 0}).size(), 0);  // a zero makes any product empty
}

}  // namespace
