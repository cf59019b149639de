// Tables stored as float16 and bfloat16 on every backend present. The math is float32 whatever the
// storage type, so each operation is checked against a float32 table of the same backend holding
// the same (widened) values: lookups and pooled lookups bit for bit the same; a train step's
// optimizer state bit for bit the same and its weights the float32 table's rounded, to nearest or
// stochastically with the bits keyed by (seed, step, row, column); initial values the float32
// table's rounded to nearest. Plus the reason stochastic rounding is the default: steps below half
// a spacing, which rounding to nearest loses.
#include <embedkit/detail/stored_row.hpp>

#include "tests/conformance/optimizer_cases.hpp"

#include <omp.h>

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;
using embedkit::ConstraintKind;
using embedkit::DType;
using embedkit::EmbeddingTable;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::Rounding;
using embedkit::TableConfig;

constexpr DType kNarrowTypes[] = {DType::float16, DType::bfloat16};
constexpr PoolingMode kModes[] = {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn, PoolingMode::max};

// `value` stored as `type` to nearest even and read back.
float nearest_as(DType type, float value) {
  return type == DType::float16 ? embedkit::detail::widen(embedkit::detail::to_float16_nearest(value))
                                : embedkit::detail::widen(embedkit::detail::to_bfloat16_nearest(value));
}

// `values` (a table's float32 rows after step `step`) as a `type` table with `seed` rounds them.
std::vector<float> rounded_as(DType type, Rounding rounding, std::uint64_t seed, std::uint64_t step,
                              const std::vector<float>& values, std::int64_t dim) {
  std::vector<float> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto row = static_cast<std::uint64_t>(static_cast<std::int64_t>(i) / dim);
    const auto col = static_cast<std::uint32_t>(static_cast<std::int64_t>(i) % dim);
    if (rounding == Rounding::nearest) {
      out[i] = nearest_as(type, values[i]);
      continue;
    }
    const std::uint32_t random = embedkit::detail::rounding_bits(seed, step, row, col);
    out[i] = type == DType::float16
                 ? embedkit::detail::widen(embedkit::detail::to_float16_stochastic(values[i], random))
                 : embedkit::detail::widen(embedkit::detail::to_bfloat16_stochastic(values[i], random));
  }
  return out;
}

class NarrowRowsConformance : public OnBackend {
 protected:
  void SetUp() override {
    OnBackend::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (GetParam().name == "cuda") GTEST_SKIP() << "the CUDA kernels take float32 rows only (placement says so)";
  }
  // A float32 table on this backend holding `narrow`'s values, its config otherwise the same.
  EmbeddingTable float_twin(const EmbeddingTable& narrow) {
    TableConfig config = narrow.config();
    config.dtype = DType::float32;
    EmbeddingTable twin = on_backend(config);
    twin.set_weights(narrow.get_weights());
    return twin;
  }
};

TEST_P(NarrowRowsConformance, InitialRowsAreTheFloatRowsRounded) {
  for (const DType type : kNarrowTypes) {
    for (const std::int64_t dim : {std::int64_t{3}, std::int64_t{16}, std::int64_t{33}}) {
      TableConfig config = config_of(dim);
      const auto full = on_backend(config).get_weights().values;
      config.dtype = type;
      const auto table = on_backend(config);
      EXPECT_EQ(table.placement().bytes.weights, static_cast<std::uint64_t>(kRows * dim) * 2);
      std::vector<float> expected(full.size());
      for (std::size_t i = 0; i < full.size(); ++i) expected[i] = nearest_as(type, full[i]);
      EXPECT_TRUE(same_bits(table.get_weights().values, expected)) << to_string(type) << ", dim " << dim;
    }
  }
}

TEST_P(NarrowRowsConformance, LookupsAndPooledLookupsAreTheFloatTablesOfTheSameValues) {
  for (const DType type : kNarrowTypes) {
    for (const std::int64_t dim : kDims) {
      TableConfig config = config_of(dim, BoundsCheck::zero_fill);
      config.dtype = type;
      const auto table = on_backend(config);
      const auto twin = float_twin(table);
      const std::string what = std::string(to_string(type)) + ", dim " + std::to_string(dim);
      for_each_index_type([&](auto index) {
        using Index = decltype(index);
        std::vector<Index> ids = random_ids<Index>(700, static_cast<std::uint64_t>(dim));
        ids[3] = Index{-1};
        ids[600] = static_cast<Index>(kRows);
        const auto got = table.lookup(IndexTensor(ids)).values;
        EXPECT_TRUE(same_bits(got, reference::lookup(matrix_of(table), ids))) << what;
        EXPECT_TRUE(same_bits(got, twin.lookup(IndexTensor(ids)).values)) << what;
        const auto offsets = random_offsets(70, 20, static_cast<std::uint64_t>(dim) + 1);
        ids.resize(static_cast<std::size_t>(offsets.back()), Index{kHot});
        for (const PoolingMode mode : kModes) {
          const auto weights =
              mode == PoolingMode::max ? std::vector<float>{} : random_values(ids.size(), 5, 0.5f, 2.0f);
          EXPECT_TRUE(same_bits(table.lookup_pooled(IndexTensor(ids), offsets, mode, weights).values,
                                twin.lookup_pooled(IndexTensor(ids), offsets, mode, weights).values))
              << what << ", " << to_string(mode);
        }
      });
    }
  }
}

// One step of `table` (narrow) and of its float32 twin from the same values and state: the state
// the same bits, the weights the twin's rounded as the narrow table rounds them.
template <class Step>
::testing::AssertionResult step_matches(EmbeddingTable& table, EmbeddingTable& twin, const Step& step) {
  twin.set_weights(table.get_weights());
  step(table);
  step(twin);
  const TableConfig config = table.config();
  TableState expected = state_of(twin);
  expected.weights = rounded_as(config.dtype, config.rounding, *config.seed, static_cast<std::uint64_t>(table.step()),
                                expected.weights, config.output_dim);
  return same_bits(state_of(table), expected);
}

TEST_P(NarrowRowsConformance, TrainStepIsTheFloatStepRoundedEveryOptimizer) {
  for (const DType type : kNarrowTypes) {
    for (const Rounding rounding : {Rounding::stochastic, Rounding::nearest}) {
      for (const Optimizer& optimizer : kOptimizers) {
        for (const std::int64_t dim : {std::int64_t{4}, std::int64_t{7}, std::int64_t{33}}) {
          TableConfig config = optimizer_config(optimizer, dim);
          config.dtype = type;
          config.rounding = rounding;
          auto table = on_backend(config);
          auto twin = float_twin(table);
          const std::string what = std::string(to_string(type)) + ", " + to_string(rounding) + ", " + optimizer.name +
                                   ", dim " + std::to_string(dim);
          for (std::uint64_t step = 0; step < 3; ++step) {
            const auto ids = random_ids<std::int64_t>(400, step + 30);
            const auto grad = random_values(ids.size() * static_cast<std::size_t>(dim), step + 31);
            ASSERT_TRUE(step_matches(table, twin, [&](EmbeddingTable& t) { t.train_step(IndexTensor(ids), grad); }))
                << what << ", step " << step;
            const auto offsets = random_offsets(40, 12, step + 32);
            const auto bag_ids = random_ids<std::int32_t>(static_cast<std::size_t>(offsets.back()), step + 33);
            const auto grad_bags = random_values(40 * static_cast<std::size_t>(dim), step + 34);
            const PoolingMode mode = kModes[step % 4];
            ASSERT_TRUE(step_matches(table, twin,
                                     [&](EmbeddingTable& t) {
                                       t.train_step_pooled(IndexTensor(bag_ids), offsets, mode, {}, grad_bags);
                                     }))
                << what << ", pooled " << to_string(mode) << ", step " << step;
          }
        }
      }
    }
  }
}

TEST_P(NarrowRowsConformance, SameBitsOnAnyThreadCount) {
  const int threads = omp_get_max_threads();
  for (const DType type : kNarrowTypes) {
    std::vector<std::vector<float>> results;
    for (const int team : {1, 2, 3}) {
      omp_set_num_threads(team);
      TableConfig config = optimizer_config(kOptimizers[5], 64);  // Adam
      config.input_dim = 4000;
      config.padding_idx.reset();
      config.dtype = type;
      auto table = on_backend(config);
      for (std::uint64_t step = 0; step < 3; ++step) {
        std::vector<std::int64_t> ids(20000);
        std::mt19937_64 rng(step);
        for (auto& id : ids) id = static_cast<std::int64_t>(rng() % 4000);
        table.train_step(IndexTensor(ids), random_values(ids.size() * 64, step));
      }
      results.push_back(table.get_weights().values);
    }
    omp_set_num_threads(threads);
    EXPECT_TRUE(same_bits(results[1], results[0])) << to_string(type) << ", 2 threads against 1";
    EXPECT_TRUE(same_bits(results[2], results[0])) << to_string(type) << ", 3 threads against 1";
  }
}

// SGD at a learning rate of 1e-3 on rows of 1.0 with a gradient of 1: each step should take 1e-3
// off, less than half the spacing below 1 (bfloat16 2^-9 ≈ 1.95e-3; float16 2^-12 ≈ 2.4e-4 is
// finer, so float16 gets 1e-4 steps). To nearest, every row stays at 1.0 forever; stochastically,
// the mean over the table moves by the right amount.
TEST_P(NarrowRowsConformance, StochasticRoundingKeepsStepsBelowHalfASpacing) {
  constexpr int kSteps = 100;
  constexpr std::int64_t kTableRows = 64, kDim = 64;
  for (const DType type : kNarrowTypes) {
    const double lr = type == DType::bfloat16 ? 1e-3 : 1e-4;
    for (const Rounding rounding : {Rounding::nearest, Rounding::stochastic}) {
      TableConfig config = embedkit::testing::table_config(kTableRows, kDim, 17);
      config.embeddings_initializer.kind = embedkit::InitializerKind::constant;
      config.embeddings_initializer.value = 1.0;
      config.optimizer = OptimizerConfig::defaults(OptimizerKind::sgd);
      config.optimizer.learning_rate = lr;
      config.dtype = type;
      config.rounding = rounding;
      auto table = on_backend(config);
      std::vector<std::int64_t> ids(kTableRows);
      for (std::int64_t r = 0; r < kTableRows; ++r) ids[static_cast<std::size_t>(r)] = r;
      const std::vector<float> grad(static_cast<std::size_t>(kTableRows * kDim), 1.0f);
      for (int step = 0; step < kSteps; ++step) table.train_step(IndexTensor(ids), grad);
      const auto weights = table.get_weights().values;
      double mean = 0.0;
      for (const float w : weights) mean += w;
      mean /= static_cast<double>(weights.size());
      const double exact = 1.0 - kSteps * lr;
      if (rounding == Rounding::nearest) {
        EXPECT_EQ(mean, 1.0) << to_string(type) << ": to nearest, no step moves a row";
      } else {
        // Each value is a sum of 100 independent roundings, each off by at most a spacing with mean
        // 0: the mean over 4096 values is within a small fraction of a spacing of the exact sum.
        EXPECT_NEAR(mean, exact, 0.02 * kSteps * lr) << to_string(type) << ": stochastically";
      }
    }
  }
}

TEST_P(NarrowRowsConformance, SetWeightsRoundsToNearestAndViewsAreRefused) {
  for (const DType type : kNarrowTypes) {
    TableConfig config = config_of(5);
    config.dtype = type;
    auto table = on_backend(config);
    const auto values = random_values(static_cast<std::size_t>(kRows * 5), 3, -300.0f, 300.0f);
    table.set_weights(values, std::vector<std::int64_t>{kRows, 5});
    std::vector<float> expected(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) expected[i] = nearest_as(type, values[i]);
    EXPECT_TRUE(same_bits(table.get_weights().values, expected)) << to_string(type);
    table.set_row(7, std::vector<float>{1.0f / 3, 2.0f / 3, 1e-7f, -70000.0f, 65520.0f});
    const auto row = table.row(7);
    for (std::size_t c = 0; c < row.size(); ++c) {
      const float given[] = {1.0f / 3, 2.0f / 3, 1e-7f, -70000.0f, 65520.0f};
      EXPECT_TRUE(same_bits({row[c]}, {nearest_as(type, given[c])})) << to_string(type) << ", column " << c;
    }
    try {
      (void)table.weights_view();
      ADD_FAILURE() << "a view of " << to_string(type) << " rows as float32 was given";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::unsupported);
      // A device table's view is refused for its placement already; a CPU table's for its type.
      if (GetParam().name == "cpu") {
        EXPECT_NE(std::string(e.what()).find(to_string(type)), std::string::npos) << e.what();
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(On, NarrowRowsConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
