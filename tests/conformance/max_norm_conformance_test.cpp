// torch's max_norm on every backend present: a lookup (plain or pooled) first renormalises, in the
// table, each distinct row it reads whose p-norm exceeds max_norm, then reads. Checked against a
// plain torch.embedding_renorm_ written here (p = 1, 2, 3, ∞; duplicates; padding_idx, which is
// renormalised too; rows above and below max_norm), against the CPU (the simulated device bit for
// bit, CUDA within 1e-6), and for what a lookup must not do: change anything when it fails, skip
// an id zero_fill reads as zeros, or write without max_norm.
#include "tests/conformance/conformance.hpp"

#include <algorithm>
#include <limits>
#include <set>

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;
using embedkit::EmbeddingTable;
using embedkit::PaddingReads;
using embedkit::TableConfig;

constexpr double kMaxNorm = 1.5;
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNormTypes[] = {1.0, 2.0, 3.0, kInf};

// The p-norm of a row in long double: the plain definition.
double plain_norm(const float* row, std::int64_t dim, double p) {
  long double sum = 0;
  long double largest = 0;
  for (std::int64_t c = 0; c < dim; ++c) {
    const long double a = std::fabs(static_cast<long double>(row[c]));
    largest = std::max(largest, a);
    sum += std::pow(a, static_cast<long double>(p));
  }
  if (std::isinf(p)) return static_cast<double>(largest);
  return static_cast<double>(std::pow(sum, 1.0L / static_cast<long double>(p)));
}

// torch.embedding_renorm_: each distinct id in range, norm of the float32 row (as float), and
// row *= max_norm / (norm + 1e-7) where the norm exceeds max_norm.
template <class Index>
std::vector<float> reference_renorm(std::vector<float> weights, std::int64_t dim, const std::vector<Index>& ids,
                                    double max_norm, double p) {
  const auto rows = static_cast<std::int64_t>(weights.size()) / dim;
  std::set<std::int64_t> distinct;
  for (const Index id : ids) {
    if (id >= 0 && static_cast<std::int64_t>(id) < rows) distinct.insert(static_cast<std::int64_t>(id));
  }
  for (const std::int64_t id : distinct) {
    float* row = weights.data() + id * dim;
    const auto norm = static_cast<float>(plain_norm(row, dim, p));
    if (static_cast<double>(norm) > max_norm) {
      const auto scale = static_cast<float>(max_norm / (static_cast<double>(norm) + 1e-7));
      for (std::int64_t c = 0; c < dim; ++c) row[c] *= scale;
    }
  }
  return weights;
}

// Rows whose norms lie well above or below max_norm for every p tried (none within 10% of it, so
// the reference and a backend agree on which rows move): row r is random values scaled to a norm of
// max_norm · (0.3 .. 0.9 or 1.1 .. 4) in the p-norm asked for.
std::vector<float> test_rows(std::int64_t rows, std::int64_t dim, double p, std::uint64_t seed) {
  std::vector<float> weights = random_values(static_cast<std::size_t>(rows * dim), seed);
  std::mt19937_64 rng(seed + 1);
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = weights.data() + r * dim;
    const double norm = plain_norm(row, dim, p);
    const double target = kMaxNorm * (rng() % 2 == 0 ? 0.3 + 0.6 * static_cast<double>(rng() % 100) / 100.0
                                                     : 1.1 + 2.9 * static_cast<double>(rng() % 100) / 100.0);
    if (norm > 0) {
      for (std::int64_t c = 0; c < dim; ++c) row[c] = static_cast<float>(row[c] * target / norm);
    }
  }
  return weights;
}

TableConfig max_norm_config(std::int64_t dim, double p, BoundsCheck bounds = BoundsCheck::error,
                            PaddingReads padding_reads = PaddingReads::row) {
  TableConfig config = config_of(dim, bounds);
  config.max_norm = kMaxNorm;
  config.norm_type = p;
  config.padding_reads = padding_reads;
  return config;
}

class MaxNormConformance : public OnBackend {
 protected:
  // A table on the backend under test and the same one on the CPU, both holding `weights`.
  std::pair<EmbeddingTable, EmbeddingTable> tables(const TableConfig& config, const std::vector<float>& weights) {
    std::pair<EmbeddingTable, EmbeddingTable> pair{on_backend(config), on_cpu(config)};
    const std::vector<std::int64_t> shape = {config.input_dim, config.output_dim};
    pair.first.set_weights(weights, shape);
    pair.second.set_weights(weights, shape);
    return pair;
  }
  // Bit for bit on the simulated device (the CPU's loops); within 1e-6 on CUDA, whose norm sums
  // the row in another order.
  ::testing::AssertionResult like_cpu(const std::vector<float>& got, const std::vector<float>& cpu) {
    return GetParam().name == "cuda" ? close(got, cpu, 1e-6f) : same_bits(got, cpu);
  }
};

TEST_P(MaxNormConformance, LookupRenormsEachDistinctRowOnceThenReadsIt) {
  for (const double p : kNormTypes) {
    for (const std::int64_t dim : {std::int64_t{1}, std::int64_t{3}, std::int64_t{8}, std::int64_t{33}}) {
      for (const PaddingReads reads : {PaddingReads::row, PaddingReads::zeros}) {
        for_each_index_type([&](auto index) {
          using Index = decltype(index);
          const std::vector<float> weights = test_rows(kRows, dim, p, static_cast<std::uint64_t>(dim) * 7 + 1);
          auto [table, cpu] = tables(max_norm_config(dim, p, BoundsCheck::error, reads), weights);
          const auto ids = random_ids<Index>(400, static_cast<std::uint64_t>(dim) + 3);  // duplicates, padding
          const std::vector<float> expected = reference_renorm(weights, dim, ids, kMaxNorm, p);
          const auto got = table.lookup(IndexTensor(ids));
          const std::vector<float> after = table.get_weights().values;
          const std::string where = "p " + std::to_string(p) + ", dim " + std::to_string(dim);
          EXPECT_TRUE(close(after, expected, 1e-6f)) << where;
          // Rows the batch did not read are the same bits as before.
          std::set<std::int64_t> read(ids.begin(), ids.end());
          for (std::int64_t r = 0; r < kRows; ++r) {
            if (read.count(r) != 0) continue;
            const auto at = static_cast<std::size_t>(r * dim);
            ASSERT_EQ(std::memcmp(after.data() + at, weights.data() + at, static_cast<std::size_t>(dim) * 4), 0)
                << where << ", row " << r;
          }
          // The lookup reads the renormalised rows (padding as padding_reads says).
          reference::Matrix m{after, kRows, dim, std::nullopt};
          if (reads == PaddingReads::zeros) m.padding_idx = kPadding;
          EXPECT_TRUE(same_bits(got.values, reference::lookup(m, ids))) << where;
          EXPECT_TRUE(like_cpu(got.values, cpu.lookup(IndexTensor(ids)).values)) << where;
          EXPECT_TRUE(like_cpu(after, cpu.get_weights().values)) << where;
        });
      }
    }
  }
}

TEST_P(MaxNormConformance, PaddingRowIsRenormalisedToo) {
  const std::int64_t dim = 4;
  std::vector<float> weights(static_cast<std::size_t>(kRows * dim), 0.1f);
  std::fill_n(weights.begin() + kPadding * dim, dim, 3.0f);  // norm 6 in the 2-norm
  auto [table, cpu] = tables(max_norm_config(dim, 2.0), weights);
  const std::vector<std::int64_t> ids = {kPadding, kPadding};
  const auto got = table.lookup(IndexTensor(ids));
  const std::vector<float> row = table.row(kPadding);
  const float expected = 3.0f * static_cast<float>(kMaxNorm / (6.0 + 1e-7));
  for (const float v : row) EXPECT_FLOAT_EQ(v, expected);
  EXPECT_TRUE(same_bits(std::vector<float>(got.values.begin(), got.values.begin() + dim), row));
}

TEST_P(MaxNormConformance, PooledModesRenormBeforePooling) {
  for (const double p : {2.0, 3.0, kInf}) {
    for (const PoolingMode mode : {PoolingMode::sum, PoolingMode::mean, PoolingMode::max, PoolingMode::sqrtn}) {
      const std::int64_t dim = 7;
      const std::vector<float> weights = test_rows(kRows, dim, p, 41);
      auto [table, cpu] = tables(max_norm_config(dim, p), weights);
      const auto offsets = random_offsets(60, 9, 5);
      const auto ids = random_ids<std::int64_t>(static_cast<std::size_t>(offsets.back()), 17);
      const std::vector<float> sample_weights =
          mode == PoolingMode::max ? std::vector<float>{} : random_values(ids.size(), 19, 0.0f, 2.0f);
      const auto got = table.lookup_pooled(IndexTensor(ids), offsets, mode, sample_weights);
      const std::vector<float> after = table.get_weights().values;
      EXPECT_TRUE(close(after, reference_renorm(weights, dim, ids, kMaxNorm, p), 1e-6f));
      // What the same pooled call gives on a table without max_norm already holding those rows.
      auto plain = on_cpu(config_of(dim));
      plain.set_weights(after, std::vector<std::int64_t>{kRows, dim});
      EXPECT_TRUE(like_cpu(got.values, plain.lookup_pooled(IndexTensor(ids), offsets, mode, sample_weights).values))
          << to_string(mode);
      EXPECT_TRUE(like_cpu(got.values, cpu.lookup_pooled(IndexTensor(ids), offsets, mode, sample_weights).values));
    }
  }
}

TEST_P(MaxNormConformance, ZeroFillSkipsBadIdsAndRenormsTheRest) {
  const std::int64_t dim = 5;
  const std::vector<float> weights = test_rows(kRows, dim, 2.0, 77);
  auto [table, cpu] = tables(max_norm_config(dim, 2.0, BoundsCheck::zero_fill), weights);
  std::vector<std::int64_t> ids = random_ids<std::int64_t>(200, 8);
  ids[3] = kRows;
  ids[150] = -1;
  ids[151] = std::numeric_limits<std::int64_t>::max();
  const auto got = table.lookup(IndexTensor(ids));
  const std::vector<float> after = table.get_weights().values;
  EXPECT_TRUE(close(after, reference_renorm(weights, dim, ids, kMaxNorm, 2.0), 1e-6f));
  EXPECT_TRUE(same_bits(got.values, reference::lookup(reference::Matrix{after, kRows, dim, std::nullopt}, ids)));
  EXPECT_EQ(table.out_of_range_count(), 3);
  (void)cpu.lookup(IndexTensor(ids));  // the same renorm there first, so both pool the same rows
  const std::vector<std::int64_t> offsets = {0, 100, 200};
  const auto pooled = table.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::sum);
  EXPECT_TRUE(like_cpu(pooled.values, cpu.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::sum).values));
}

TEST_P(MaxNormConformance, FailingLookupChangesNothing) {
  const std::int64_t dim = 6;
  const std::vector<float> weights = test_rows(kRows, dim, 2.0, 13);
  auto pair = tables(max_norm_config(dim, 2.0), weights);
  EmbeddingTable& table = pair.first;
  for_each_index_type([&](auto index) {
    using Index = decltype(index);
    std::vector<Index> ids = random_ids<Index>(300, 4);  // rows above max_norm among them
    ids[299] = static_cast<Index>(kRows);
    EXPECT_THROW(table.lookup(IndexTensor(ids)), Error);
    const std::vector<std::int64_t> offsets = {0, 150, 300};
    EXPECT_THROW(table.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::mean), Error);
    EXPECT_TRUE(same_bits(table.get_weights().values, weights));
  });
  EXPECT_EQ(table.out_of_range_count(), 0);
}

TEST_P(MaxNormConformance, EmptyBatchChangesNothing) {
  const std::int64_t dim = 3;
  const std::vector<float> weights = test_rows(kRows, dim, 1.0, 3);
  auto [table, cpu] = tables(max_norm_config(dim, 1.0), weights);
  const std::vector<std::int32_t> none;
  EXPECT_TRUE(table.lookup(IndexTensor(none)).values.empty());
  const std::vector<std::int64_t> offsets = {0, 0};
  EXPECT_EQ(table.lookup_pooled(IndexTensor(none), offsets, PoolingMode::sum).values.size(), 3u);
  EXPECT_TRUE(same_bits(table.get_weights().values, weights));
}

TEST_P(MaxNormConformance, WithoutMaxNormLookupsWriteNothing) {
  const std::int64_t dim = 8;
  const std::vector<float> weights = test_rows(kRows, dim, 2.0, 9);
  TableConfig config = max_norm_config(dim, 2.0);
  config.max_norm.reset();
  auto [table, cpu] = tables(config, weights);
  const auto ids = random_ids<std::int64_t>(500, 2);
  (void)table.lookup(IndexTensor(ids));
  const std::vector<std::int64_t> offsets = {0, 250, 500};
  (void)table.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::sum);
  EXPECT_TRUE(same_bits(table.get_weights().values, weights));
}

INSTANTIATE_TEST_SUITE_P(Backends, MaxNormConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
