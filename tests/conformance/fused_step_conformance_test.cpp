// Train steps (train_step, train_step_pooled) on every backend present, through its fused step where
// it offers one (the simulated device's is checked to have run): weights and state bit for bit the
// CPU's and within tolerance of the reference (its gradient, then its optimizer), for each built-in
// optimizer and pooling mode; duplicates, a hot row, padding, empty batches and bags, both id
// types; bad ids fail under "error" with the table unchanged and are skipped under "zero_fill".
#include "tests/conformance/optimizer_cases.hpp"
#include "tests/sim_context.hpp"

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;

constexpr PoolingMode kModes[] = {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn, PoolingMode::max};

class FusedStepConformance : public OnBackend {
 protected:
  // Fused steps the backend has taken so far, where it counts them (the simulated device), else -1.
  std::int64_t fused_steps() {
    return GetParam().name == "sim" ? embedkit::testing::sim_of(context()).fused_steps() : -1;
  }
};

TEST_P(FusedStepConformance, TrainStepEveryOptimizer) {
  const std::int64_t fused_before = fused_steps();
  for (const Optimizer& optimizer : kOptimizers) {
    for (const std::int64_t dim : {std::int64_t{4}, std::int64_t{7}, std::int64_t{16}, std::int64_t{33}}) {
      const auto config = optimizer_config(optimizer, dim);
      auto table = on_backend(config);
      auto cpu = on_cpu(config);
      reference::Trainer trainer = trainer_of(table);
      const std::string what = std::string(optimizer.name) + ", dim " + std::to_string(dim);
      for (std::uint64_t step = 0; step < 3; ++step) {
        const auto grad = random_values(600 * static_cast<std::size_t>(dim), step + 80);
        const auto one_step = [&](const auto& ids) {
          const SparseGrad folded = reference::sparse_grad(matrix_of(table), ids, grad);
          table.train_step(IndexTensor(ids), grad);
          cpu.train_step(IndexTensor(ids), grad);
          trainer.apply(folded);
        };
        if (step % 2 == 0) {
          one_step(random_ids<std::int32_t>(600, step + 70));
        } else {
          one_step(random_ids<std::int64_t>(600, step + 70));
        }
        ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", step " << step;
        ASSERT_TRUE(close_to(state_of(table), trainer)) << what << ", step " << step;
      }
    }
  }
  if (fused_before >= 0) {
    EXPECT_GT(fused_steps(), fused_before) << "the fused step never ran";
  }
}

TEST_P(FusedStepConformance, TrainStepPooledEveryMode) {
  const std::int64_t fused_before = fused_steps();
  for (const Optimizer& optimizer : {kOptimizers[1], kOptimizers[4], kOptimizers[5]}) {
    for (const PoolingMode mode : kModes) {
      for (const std::int64_t dim : {std::int64_t{5}, std::int64_t{16}}) {
        const auto config = optimizer_config(optimizer, dim);
        auto table = on_backend(config);
        auto cpu = on_cpu(config);
        reference::Trainer trainer = trainer_of(table);
        const std::string what = std::string(optimizer.name) + ", " + to_string(mode) + ", dim " + std::to_string(dim);
        for (std::uint64_t step = 0; step < 2; ++step) {
          const auto offsets = random_offsets(60, 30, step + 90);
          const auto ids = random_ids<std::int64_t>(static_cast<std::size_t>(offsets.back()), step + 91);
          const auto w =
              mode == PoolingMode::max ? std::vector<float>{} : random_values(ids.size(), step + 92, 0.5f, 2.0f);
          const auto grad_bags = random_values(60 * static_cast<std::size_t>(dim), step + 93);
          const SparseGrad folded = reference::sparse_grad_pooled(matrix_of(table), ids, offsets, mode, w, grad_bags);
          table.train_step_pooled(IndexTensor(ids), offsets, mode, w, grad_bags);
          cpu.train_step_pooled(IndexTensor(ids), offsets, mode, w, grad_bags);
          trainer.apply(folded);
          ASSERT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", step " << step;
          ASSERT_TRUE(close_to(state_of(table), trainer)) << what << ", step " << step;
        }
      }
    }
  }
  if (fused_before >= 0) {
    EXPECT_GT(fused_steps(), fused_before) << "the fused step never ran";
  }
}

TEST_P(FusedStepConformance, EmptyBatchesAndBags) {
  for (const Optimizer& optimizer : kOptimizers) {
    auto table = on_backend(optimizer_config(optimizer, 8));
    auto cpu = on_cpu(optimizer_config(optimizer, 8));
    for_each_index_type([&](auto index) {
      const std::vector<decltype(index)> none;
      table.train_step(IndexTensor(none), std::vector<float>{});
      cpu.train_step(IndexTensor(none), std::vector<float>{});
      const std::vector<std::int64_t> empty_bags = {0, 0, 0};
      const std::vector<float> grad_bags(16, 1.0f);
      table.train_step_pooled(IndexTensor(none), empty_bags, PoolingMode::mean, {}, grad_bags);
      cpu.train_step_pooled(IndexTensor(none), empty_bags, PoolingMode::mean, {}, grad_bags);
    });
    EXPECT_TRUE(same_bits(state_of(table), state_of(cpu))) << optimizer.name;
  }
}

TEST_P(FusedStepConformance, OutOfRangeUnderBothBoundsChecks) {
  for (const Optimizer& optimizer : {kOptimizers[0], kOptimizers[5]}) {
    for_each_index_type([&](auto index) {
      using Index = decltype(index);
      std::vector<Index> ids = random_ids<Index>(300, 12);
      ids[150] = static_cast<Index>(kRows);
      ids[299] = Index{-1};
      const auto grad = random_values(ids.size() * 16, 13);
      const std::vector<std::int64_t> offsets = {0, 100, 100, 300};
      const auto grad_bags = random_values(3 * 16, 14);

      auto erroring = on_backend(optimizer_config(optimizer, 16));
      const auto before = state_of(erroring);
      try {
        erroring.train_step(IndexTensor(ids), grad);
        ADD_FAILURE() << "a bad id was accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.status(), Status::out_of_range) << e.what();
      }
      EXPECT_TRUE(same_bits(state_of(erroring), before)) << optimizer.name;
      EXPECT_THROW(erroring.train_step_pooled(IndexTensor(ids), offsets, PoolingMode::sum, {}, grad_bags), Error);
      EXPECT_TRUE(same_bits(state_of(erroring), before)) << optimizer.name;

      auto filling = on_backend(optimizer_config(optimizer, 16, BoundsCheck::zero_fill));
      auto cpu = on_cpu(optimizer_config(optimizer, 16, BoundsCheck::zero_fill));
      reference::Trainer trainer = trainer_of(filling);
      trainer.apply(reference::sparse_grad(matrix_of(filling), ids, grad));
      filling.train_step(IndexTensor(ids), grad);
      cpu.train_step(IndexTensor(ids), grad);
      EXPECT_TRUE(same_bits(state_of(filling), state_of(cpu))) << optimizer.name;
      EXPECT_TRUE(close_to(state_of(filling), trainer)) << optimizer.name;
      filling.train_step_pooled(IndexTensor(ids), offsets, PoolingMode::sum, {}, grad_bags);
      cpu.train_step_pooled(IndexTensor(ids), offsets, PoolingMode::sum, {}, grad_bags);
      EXPECT_TRUE(same_bits(state_of(filling), state_of(cpu))) << optimizer.name;
    });
  }
}

INSTANTIATE_TEST_SUITE_P(On, FusedStepConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
