// The whole-table operations on every backend present: regularization_loss (the penalty, summed in
// fixed chunks of 65 536 weights) bit for bit the CPU's and within a long-double reference's
// bound, at sizes below, at and around one chunk and several; apply_constraints (constrain_all)
// bit for bit the CPU's and close to the reference's constraint, for each constraint and dims that
// are and are not multiples of a vector.
#include "tests/conformance/optimizer_cases.hpp"

#include <cstring>

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;
using embedkit::Constraint;
using embedkit::ConstraintKind;
using embedkit::Regularizer;
using embedkit::TableConfig;

class TableOpsConformance : public OnBackend {};

// Weights over many magnitudes, so that a sum taken in another order gives other bits.
std::vector<float> spread_values(std::size_t count, std::uint64_t seed) {
  std::vector<float> values = random_values(count, seed);
  std::mt19937_64 rng(seed + 1);
  for (auto& v : values) v = std::ldexp(v, static_cast<int>(rng() % 24) - 12);
  return values;
}

TEST_P(TableOpsConformance, RegularizationLossAtAndAroundItsChunks) {
  constexpr std::int64_t kChunk = std::int64_t{1} << 16;
  for (const std::int64_t count : {std::int64_t{1}, std::int64_t{127}, kChunk, kChunk + 1, 3 * kChunk + 4097}) {
    for (const Regularizer penalty : {Regularizer{0.001, 0.002}, Regularizer{0.01, 0.0}, Regularizer{0.0, 0.5}}) {
      for (const std::int64_t dim : {std::int64_t{1}, std::int64_t{127}}) {
        if (count % dim != 0) continue;
        TableConfig config = embedkit::testing::table_config(count / dim, dim, 3);
        config.embeddings_regularizer = penalty;
        auto table = on_backend(config);
        auto cpu = on_cpu(config);
        const std::vector<float> weights =
            spread_values(static_cast<std::size_t>(count), static_cast<std::uint64_t>(count));
        const std::vector<std::int64_t> shape = {count / dim, dim};
        table.set_weights(weights, shape);
        cpu.set_weights(weights, shape);
        const double got = table.regularization_loss(), expected = cpu.regularization_loss();
        const std::string what = std::to_string(count) + " weights of dim " + std::to_string(dim) + ", l1 " +
                                 std::to_string(penalty.l1) + ", l2 " + std::to_string(penalty.l2);
        EXPECT_EQ(std::memcmp(&got, &expected, sizeof got), 0) << what << ": " << got << ", the CPU's " << expected;
        long double sum = 0;
        for (const float w : weights) sum += penalty.l1 * std::fabs(static_cast<long double>(w)) + penalty.l2 * w * w;
        EXPECT_NEAR(got, static_cast<double>(sum), 1e-10 * static_cast<double>(sum)) << what;
      }
    }
  }
}

TEST_P(TableOpsConformance, ApplyConstraintsEveryKindAndDim) {
  const std::pair<const char*, Constraint> constraints[] = {{"max_norm", {ConstraintKind::max_norm, 0.8}},
                                                            {"unit_norm", {ConstraintKind::unit_norm, 1.0}},
                                                            {"non_neg", {ConstraintKind::non_neg, 1.0}},
                                                            {"none", {ConstraintKind::none, 1.0}}};
  for (const auto& [name, constraint] : constraints) {
    for (const std::int64_t dim :
         {std::int64_t{1}, std::int64_t{3}, std::int64_t{8}, std::int64_t{33}, std::int64_t{128}, std::int64_t{257}}) {
      TableConfig config = config_of(dim);
      config.embeddings_constraint = constraint;
      auto table = on_backend(config);
      auto cpu = on_cpu(config);
      // Rows above and below the max norm, a zero row, and negative entries.
      std::vector<float> weights =
          random_values(static_cast<std::size_t>(kRows * dim), static_cast<std::uint64_t>(dim));
      for (std::int64_t r = 0; r < kRows; r += 3) {
        for (std::int64_t c = 0; c < dim; ++c) weights[static_cast<std::size_t>(r * dim + c)] *= 4.0f;
      }
      std::fill_n(weights.begin() + 2 * dim, dim, 0.0f);
      const std::vector<std::int64_t> shape = {kRows, dim};
      table.set_weights(weights, shape);
      cpu.set_weights(weights, shape);
      table.apply_constraints();
      cpu.apply_constraints();
      const std::string what = std::string(name) + ", dim " + std::to_string(dim);
      const std::vector<float> got = table.get_weights().values;
      EXPECT_TRUE(same_bits(got, cpu.get_weights().values)) << what;
      reference::Trainer trainer{table.config(), weights, {}, {}, 0};
      for (std::int64_t r = 0; r < kRows; ++r)
        trainer.constrain(trainer.weights.data() + r * dim, static_cast<std::size_t>(dim));
      EXPECT_TRUE(close(got, trainer.weights, 2e-6f)) << what;
      if (constraint.kind == ConstraintKind::none) {
        EXPECT_TRUE(same_bits(got, weights)) << what;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(On, TableOpsConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
