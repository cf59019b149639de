// get_weights / set_weights / row / set_row: shapes checked in Keras's words, lookups see writes,
// and a failed write changes nothing.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/support/tables.hpp"

#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::Status;
using embedkit::testing::make_table;

constexpr std::uint64_t kSeed = 3;  // the seed of every table here

TEST(Weights, SetThenGetAndLookupSeeIt) {
  EmbeddingTable table = make_table(4, 3, kSeed);
  std::vector<float> w(12);
  std::iota(w.begin(), w.end(), 1.0f);
  const std::int64_t shape[] = {4, 3};
  table.set_weights(w, shape);
  const auto got = table.get_weights();
  EXPECT_EQ(got.shape, (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(got.values, w);
  const std::vector<std::int64_t> ids = {3, 0};
  EXPECT_EQ(table.lookup(IndexTensor(ids)).values, (std::vector<float>{10, 11, 12, 1, 2, 3}));
}

TEST(Weights, ShapeMismatchInKerasWordsLeavesTableUnchanged) {
  EmbeddingTable table = make_table(20000, 100, kSeed);
  const auto before = table.get_weights().values;
  const std::vector<float> w(static_cast<std::size_t>(20001 * 100), 1.0f);
  const std::int64_t shape[] = {20001, 100};
  try {
    table.set_weights(w, shape);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::shape_mismatch);
    EXPECT_NE(std::string(e.what()).find(
                  "weight shape (20000, 100) is not compatible with provided weight shape (20001, 100)"),
              std::string::npos)
        << e.what();
  }
  const std::int64_t flat[] = {2000000};
  EXPECT_THROW(table.set_weights(std::vector<float>(2000000), flat), Error);
  const std::int64_t right[] = {20000, 100};
  EXPECT_THROW(table.set_weights(std::vector<float>(5), right), Error);  // too few values for the shape
  EXPECT_EQ(table.get_weights().values, before);
}

TEST(Weights, GetIntoWrongSizeIsShapeMismatch) {
  const EmbeddingTable table = make_table(4, 3, kSeed);
  std::vector<float> out(11, -1.0f);
  try {
    table.get_weights(out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::shape_mismatch);
  }
  EXPECT_EQ(out, std::vector<float>(11, -1.0f));
}

TEST(Weights, RowAndSetRow) {
  EmbeddingTable table = make_table(5, 2, kSeed);
  const auto weights = table.get_weights().values;
  EXPECT_EQ(table.row(4), (std::vector<float>{weights[8], weights[9]}));
  table.set_row(4, std::vector<float>{7.0f, 8.0f});
  EXPECT_EQ(table.row(4), (std::vector<float>{7.0f, 8.0f}));
  const std::vector<std::int32_t> ids = {4};
  EXPECT_EQ(table.lookup(IndexTensor(ids)).values, (std::vector<float>{7.0f, 8.0f}));
  auto expected = weights;
  expected[8] = 7.0f;
  expected[9] = 8.0f;
  EXPECT_EQ(table.get_weights().values, expected);  // no other row moved
}

TEST(Weights, RowErrorsChangeNothing) {
  EmbeddingTable table = make_table(5, 2, kSeed);
  const auto before = table.get_weights().values;
  try {
    table.row(5);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_range);
    EXPECT_STREQ(e.what(), "row id 5 is not in [0, 5)");
  }
  EXPECT_THROW(table.row(-1), Error);
  EXPECT_THROW(table.set_row(-1, std::vector<float>{1, 2}), Error);
  try {
    table.set_row(1, std::vector<float>{1, 2, 3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::shape_mismatch);
  }
  EXPECT_EQ(table.get_weights().values, before);
}

TEST(Weights, ConcurrentLookupsSeeWholeRows) {
  // Readers never see a row half-way between two set_row calls.
  EmbeddingTable table = make_table(8, 256, kSeed);
  table.set_row(3, std::vector<float>(256, 0.0f));
  std::thread writer([&] {
    for (int step = 1; step <= 200; ++step) table.set_row(3, std::vector<float>(256, static_cast<float>(step)));
  });
  const std::vector<std::int64_t> ids = {3};
  bool torn = false;
  for (int i = 0; i < 2000 && !torn; ++i) {
    const auto row = table.lookup(IndexTensor(ids)).values;
    for (const float v : row) torn = torn || v != row[0];
  }
  writer.join();
  EXPECT_FALSE(torn);
}

}  // namespace
