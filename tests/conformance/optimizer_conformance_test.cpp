// Optimizer steps (apply of a sparse gradient) on every backend present: weights and every state
// array within tolerance of the reference optimizer and bit for bit the CPU's, for each built-in
// optimizer with a regularizer, weight decay and a max-norm constraint, over dims that are and are
// not multiples of 4, 8 and 16; a step that fails changes nothing.
#include "tests/conformance/optimizer_cases.hpp"

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;

class OptimizerConformance : public OnBackend {};

TEST_P(OptimizerConformance, EveryOptimizerAgainstTheReference) {
  for (const Optimizer& optimizer : kOptimizers) {
    for (const std::int64_t dim : {std::int64_t{3}, std::int64_t{8}, std::int64_t{16}, std::int64_t{33}}) {
      const auto config = optimizer_config(optimizer, dim);
      auto table = on_backend(config);
      auto cpu = on_cpu(config);
      reference::Trainer trainer = trainer_of(table);
      const std::string what = std::string(optimizer.name) + ", dim " + std::to_string(dim);
      for (std::uint64_t step = 0; step < 3; ++step) {
        const auto ids = random_ids<std::int64_t>(300, step + 50);
        const auto grad = random_values(ids.size() * static_cast<std::size_t>(dim), step + 60);
        const SparseGrad folded = reference::sparse_grad(matrix_of(table), ids, grad);
        table.apply(folded);
        cpu.apply(folded);
        trainer.apply(folded);
        ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", step " << step;
        ASSERT_TRUE(close_to(state_of(table), trainer)) << what << ", step " << step;
      }
    }
  }
}

TEST_P(OptimizerConformance, EmptyGradientCountsAStep) {
  for (const Optimizer& optimizer : kOptimizers) {
    auto table = on_backend(optimizer_config(optimizer, 8));
    const auto before = state_of(table);
    SparseGrad none;
    none.dim = 8;
    table.apply(none);
    auto after = state_of(table);
    EXPECT_EQ(after.step, before.step + 1) << optimizer.name;
    after.step = before.step;
    EXPECT_TRUE(same_bits(after, before)) << optimizer.name;
  }
}

TEST_P(OptimizerConformance, FailedStepChangesNothing) {
  for (const Optimizer& optimizer : kOptimizers) {
    auto table = on_backend(optimizer_config(optimizer, 7));
    const auto before = state_of(table);
    SparseGrad out_of_range;
    out_of_range.dim = 7;
    out_of_range.unique_ids = {1, kHot, kRows};
    out_of_range.rows = random_values(21, 3);
    SparseGrad unsorted = out_of_range;
    unsorted.unique_ids = {kHot, 1, 2};
    SparseGrad short_rows = out_of_range;
    short_rows.unique_ids = {1, 2, 3};
    short_rows.rows.resize(20);
    for (const SparseGrad* bad : {&out_of_range, &unsorted, &short_rows}) {
      EXPECT_THROW(table.apply(*bad), Error) << optimizer.name;
      EXPECT_TRUE(same_bits(state_of(table), before)) << optimizer.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(On, OptimizerConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
