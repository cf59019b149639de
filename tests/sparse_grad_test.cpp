// sparse_grad against a reference that sums each id's rows in the documented canonical order,
// bitwise, on random and adversarial batches, and on 1 and 2 threads.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/support/tables.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::SparseGrad;
using embedkit::Status;
using embedkit::TableConfig;
using embedkit::testing::make_table;
using embedkit::testing::uniform_floats;

constexpr std::uint64_t kSeed = 1;  // the seed of every table here

// The canonical order, written out: positions in increasing order, pieces of 32 summed left to
// right from their first row, piece sums added left to right from the first.
template <class Index>
SparseGrad canonical_reference(const std::vector<Index>& ids, const std::vector<float>& grad, std::int64_t dim,
                               std::int64_t input_dim, std::int64_t padding_idx = -1) {
  std::map<std::int64_t, std::vector<std::int64_t>> positions;
  for (std::size_t p = 0; p < ids.size(); ++p) {
    if (ids[p] >= 0 && ids[p] < input_dim && ids[p] != padding_idx)
      positions[ids[p]].push_back(static_cast<std::int64_t>(p));
  }
  SparseGrad out;
  out.dim = dim;
  for (const auto& [id, list] : positions) {
    out.unique_ids.push_back(id);
    std::vector<float> total(dim);
    for (std::size_t start = 0; start < list.size(); start += 32) {
      std::vector<float> piece(grad.begin() + list[start] * dim, grad.begin() + (list[start] + 1) * dim);
      for (std::size_t k = start + 1; k < std::min(list.size(), start + 32); ++k) {
        for (std::int64_t c = 0; c < dim; ++c) piece[c] += grad[list[k] * dim + c];
      }
      for (std::int64_t c = 0; c < dim; ++c) total[c] = start == 0 ? piece[c] : total[c] + piece[c];
    }
    out.rows.insert(out.rows.end(), total.begin(), total.end());
  }
  return out;
}

void expect_bitwise(const SparseGrad& got, const SparseGrad& expected) {
  EXPECT_EQ(got.dim, expected.dim);
  EXPECT_EQ(got.unique_ids, expected.unique_ids);
  ASSERT_EQ(got.rows.size(), expected.rows.size());
  EXPECT_EQ(std::memcmp(got.rows.data(), expected.rows.data(), got.rows.size() * sizeof(float)), 0);
}

template <class Index>
class SparseGradTest : public ::testing::Test {};
using IndexTypes = ::testing::Types<std::int32_t, std::int64_t>;
TYPED_TEST_SUITE(SparseGradTest, IndexTypes);

TYPED_TEST(SparseGradTest, RandomBatchWithDuplicates) {
  const EmbeddingTable table = make_table(300, 9, kSeed);
  std::mt19937_64 rng(2);
  std::vector<TypeParam> ids(20000);
  for (auto& id : ids) id = static_cast<TypeParam>(rng() % 300);  // ~67 occurrences each: several pieces
  const auto grad = uniform_floats(ids.size() * 9, 3);
  const SparseGrad got = table.sparse_grad(IndexTensor(ids.data(), {100, 200}), grad);
  expect_bitwise(got, canonical_reference(ids, grad, 9, 300));
  // And it is the sum: against double precision, within float rounding of ~70 terms.
  std::map<std::int64_t, std::vector<double>> exact;
  for (std::size_t p = 0; p < ids.size(); ++p) {
    auto& row = exact[ids[p]];
    row.resize(9);
    for (int c = 0; c < 9; ++c) row[c] += grad[p * 9 + c];
  }
  for (std::size_t u = 0; u < got.unique_ids.size(); ++u) {
    for (int c = 0; c < 9; ++c) EXPECT_NEAR(got.rows[u * 9 + c], exact[got.unique_ids[u]][c], 1e-4);
  }
}

TYPED_TEST(SparseGradTest, OneHotIdInAMillionBitwiseOnOneAndTwoThreads) {
  const EmbeddingTable table = make_table(1 << 20, 4, kSeed);
  std::mt19937_64 rng(5);
  std::vector<TypeParam> ids(1 << 20);
  for (auto& id : ids) id = rng() % 10 < 9 ? 77 : static_cast<TypeParam>(rng() % (1 << 20));  // 90% one id
  const auto grad = uniform_floats(ids.size() * 4, 6);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const SparseGrad one = table.sparse_grad(IndexTensor(ids), grad);
  omp_set_num_threads(2);
  const SparseGrad two = table.sparse_grad(IndexTensor(ids), grad);
  omp_set_num_threads(threads);
  expect_bitwise(one, two);
  expect_bitwise(one, canonical_reference(ids, grad, 4, 1 << 20));
}

TYPED_TEST(SparseGradTest, EmptyBatchAndAllPadding) {
  const EmbeddingTable table = make_table(10, 3, kSeed, 0);
  const SparseGrad empty = table.sparse_grad(IndexTensor(static_cast<const TypeParam*>(nullptr), {0, 5}), {});
  EXPECT_TRUE(empty.unique_ids.empty());
  EXPECT_TRUE(empty.rows.empty());
  EXPECT_EQ(empty.dim, 3);
  const std::vector<TypeParam> padding = {0, 0, 0};
  EXPECT_TRUE(table.sparse_grad(IndexTensor(padding), uniform_floats(9, 1)).unique_ids.empty());
}

TYPED_TEST(SparseGradTest, PaddingAndZeroFilledIdsGetNothing) {
  const EmbeddingTable table = make_table(10, 2, kSeed, 4, embedkit::BoundsCheck::zero_fill);
  const std::vector<TypeParam> ids = {4, 3, 12, -1, 3, 4, 9};
  const auto grad = uniform_floats(ids.size() * 2, 7);
  const SparseGrad got = table.sparse_grad(IndexTensor(ids), grad);
  EXPECT_EQ(got.unique_ids, (std::vector<std::int64_t>{3, 9}));
  expect_bitwise(got, canonical_reference(ids, grad, 2, 10, 4));
}

TYPED_TEST(SparseGradTest, ErrorsNameTheProblem) {
  const EmbeddingTable table = make_table(10, 2, kSeed);
  const std::vector<TypeParam> ids = {1, 2, 3};
  try {
    table.sparse_grad(IndexTensor(ids), std::vector<float>(5));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::shape_mismatch);
    EXPECT_STREQ(e.what(), "grad_out must hold 3 x 2 floats for indices of shape (3,), got 5");
  }
  const std::vector<TypeParam> bad = {1, 10, 3};
  try {
    table.sparse_grad(IndexTensor(bad), std::vector<float>(6));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_range);
    EXPECT_STREQ(e.what(), "indices[1] = 10 is not in [0, 10)");
  }
}

TEST(SparseGrad, HugeIdsAcrossTheWholeKeyRange) {
  // 2^26 one-wide rows: the sort's keys use all 26 bits (three radix passes).
  constexpr std::int64_t kRows = std::int64_t{1} << 26;
  TableConfig config;
  config.input_dim = kRows;
  config.output_dim = 1;
  config.embeddings_initializer = embedkit::Initializer::from_name("zeros");
  const EmbeddingTable table(config);
  const std::vector<std::int64_t> ids = {kRows - 1, 0, (kRows >> 1) + 5, 0, kRows - 1};
  const std::vector<float> grad = {1, 2, 3, 4, 5};
  const SparseGrad got = table.sparse_grad(IndexTensor(ids), grad);
  EXPECT_EQ(got.unique_ids, (std::vector<std::int64_t>{0, (kRows >> 1) + 5, kRows - 1}));
  EXPECT_EQ(got.rows, (std::vector<float>{6, 3, 6}));
}

// Ten million gradient rows of one id, folded in the canonical order, against the exact sum, with
// the error bound the order implies. Every value is a multiple of 2^-24 in [-1, 1], so each partial
// sum of the double-precision reference is a multiple of 2^-24 below 2^24 in magnitude: 48
// significant bits, exact in a double. Column 0 holds values in [0, 1) (no cancellation: the sum
// is about 5e6), column 1 values in [-1, 1) (the sum is a random walk).
//
// The bound. With round to nearest, one float addition gives fl(a + b) = (a + b) / (1 + d), |d| <=
// u = 2^-24, so its error is at most u·|fl(a + b)|; the errors of a sum simply add up. The
// canonical order makes n - 1 additions (31 in each piece of K = 32 rows, then P - 1 = n/K - 1 to
// combine the piece sums left to right), so |error| <= u · Σ |result of each addition|: the
// running-error bound, computed below along that order. Each row passes through at most K - 1
// additions in its piece and P - 1 in the combination, which bounds it a priori by
// γ(K + P - 2) · Σ|g|, γ(m) = m·u / (1 - m·u) (Higham, Accuracy and Stability, §4.2); for n = 10^7
// that is 0.019 · Σ|g|. The test asserts the library's row is bitwise the order's float sum and
// that the measured error is within the running bound, itself within the a-priori one.
TEST(SparseGrad, TenMillionDuplicatesStayWithinTheBoundOfTheCanonicalOrder) {
  constexpr std::int64_t kCount = 10'000'000, kDim = 2, kPiece = 32;
  constexpr double kUnit = 0x1p-24;
  const EmbeddingTable table = make_table(8, kDim, kSeed);
  const std::vector<std::int32_t> ids(kCount, 5);
  std::vector<float> grad(static_cast<std::size_t>(kCount * kDim));
  std::mt19937_64 rng(9);
  for (std::int64_t p = 0; p < kCount; ++p) {
    const std::uint64_t bits = rng();
    grad[p * kDim] = static_cast<float>(bits & 0xFFFFFF) * 0x1p-24f;
    grad[p * kDim + 1] = static_cast<float>(static_cast<std::int64_t>((bits >> 24) & 0x1FFFFFF) - 0x1000000) * 0x1p-24f;
  }
  const SparseGrad got = table.sparse_grad(IndexTensor(ids), grad);
  ASSERT_EQ(got.unique_ids, std::vector<std::int64_t>{5});
  const double pieces = static_cast<double>(kCount / kPiece);
  const double additions_per_row = kPiece - 1 + pieces - 1;
  const double gamma = additions_per_row * kUnit / (1 - additions_per_row * kUnit);
  for (std::int64_t c = 0; c < kDim; ++c) {
    double exact = 0, magnitude = 0, running = 0;
    float total = 0;
    for (std::int64_t start = 0; start < kCount; start += kPiece) {
      float piece = grad[start * kDim + c];
      for (std::int64_t p = start + 1; p < std::min(kCount, start + kPiece); ++p) {
        piece += grad[p * kDim + c];
        running += std::abs(piece);
      }
      if (start == 0) {
        total = piece;
      } else {
        total += piece;
        running += std::abs(total);
      }
    }
    for (std::int64_t p = 0; p < kCount; ++p) {
      exact += grad[p * kDim + c];
      magnitude += std::abs(grad[p * kDim + c]);
    }
    const double error = std::abs(static_cast<double>(got.rows[c]) - exact);
    const double running_bound = kUnit * running, a_priori_bound = gamma * magnitude;
    EXPECT_EQ(got.rows[c], total) << "column " << c << " is not the canonical order's float sum";
    EXPECT_LE(error, running_bound) << "column " << c;
    EXPECT_LE(running_bound, a_priori_bound) << "column " << c;
    std::printf(
        "column %lld: sum %.6f, float %.6f, |error| %.3g (%.2g of the sum), running bound %.3g, "
        "a-priori bound %.3g (sum of |g| %.6g)\n",
        static_cast<long long>(c), exact, static_cast<double>(got.rows[c]), error, error / std::abs(exact),
        running_bound, a_priori_bound, magnitude);
  }
}

}  // namespace
