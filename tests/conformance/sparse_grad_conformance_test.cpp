// Sparse gradients on every backend present: sparse_grad bit for bit the reference's fold in the
// canonical order and the CPU's; sparse_grad_pooled within the reference's tolerance and the CPU's
// bits, every mode, with and without weights; duplicates, a hot row of several fold pieces, padding,
// empty batches and bags, both id types, every dim; bad ids under both bounds checks.
#include "tests/conformance/conformance.hpp"

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;

constexpr PoolingMode kModes[] = {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn, PoolingMode::max};

class SparseGradConformance : public OnBackend {};

TEST_P(SparseGradConformance, LookupGradientEveryDim) {
  for (const std::int64_t dim : kDims) {
    const auto table = on_backend(config_of(dim));
    const auto cpu = on_cpu(config_of(dim));
    for_each_index_type([&](auto index) {
      using Index = decltype(index);
      // About 700 of the hot row: 22 pieces of the fold.
      const auto ids = random_ids<Index>(2000, static_cast<std::uint64_t>(dim) + 40);
      const auto grad = random_values(ids.size() * static_cast<std::size_t>(dim), 7);
      const SparseGrad got = table.sparse_grad(IndexTensor(ids), grad);
      EXPECT_TRUE(same_bits(got, reference::sparse_grad(matrix_of(table), ids, grad))) << "dim " << dim;
      EXPECT_TRUE(same_bits(got, cpu.sparse_grad(IndexTensor(ids), grad))) << "dim " << dim;
    });
  }
}

TEST_P(SparseGradConformance, PooledGradientEveryModeAndDim) {
  for (const std::int64_t dim : kDims) {
    const auto table = on_backend(config_of(dim));
    const auto cpu = on_cpu(config_of(dim));
    const auto matrix = matrix_of(table);
    for_each_index_type([&](auto index) {
      using Index = decltype(index);
      const auto offsets = random_offsets(80, 50, static_cast<std::uint64_t>(dim) + 2);
      const auto ids = random_ids<Index>(static_cast<std::size_t>(offsets.back()), static_cast<std::uint64_t>(dim) + 3);
      const auto sample_weights = random_values(ids.size(), 4, 0.25f, 2.0f);
      const auto grad_bags = random_values(80 * static_cast<std::size_t>(dim), 5);
      for (const PoolingMode mode : kModes) {
        for (const bool weighted : {false, true}) {
          if (weighted && mode == PoolingMode::max) continue;
          const std::vector<float> w = weighted ? sample_weights : std::vector<float>{};
          const std::string what = std::string(to_string(mode)) + (weighted ? " weighted" : "") + ", dim " +
                                   std::to_string(dim) + ", " + std::to_string(sizeof(Index) * 8) + "-bit ids";
          const SparseGrad got = table.sparse_grad_pooled(IndexTensor(ids), offsets, mode, w, grad_bags);
          EXPECT_TRUE(close(got, reference::sparse_grad_pooled(matrix, ids, offsets, mode, w, grad_bags), 1e-5f))
              << what;
          EXPECT_TRUE(same_bits(got, cpu.sparse_grad_pooled(IndexTensor(ids), offsets, mode, w, grad_bags))) << what;
        }
      }
    });
  }
}

TEST_P(SparseGradConformance, EmptyBatchesAndBags) {
  const auto table = on_backend(config_of(8));
  for_each_index_type([&](auto index) {
    using Index = decltype(index);
    const std::vector<Index> none;
    const SparseGrad empty = table.sparse_grad(IndexTensor(none), std::vector<float>{});
    EXPECT_TRUE(empty.unique_ids.empty());
    EXPECT_TRUE(empty.rows.empty());
    for (const PoolingMode mode : kModes) {
      const SparseGrad bags = table.sparse_grad_pooled(IndexTensor(none), std::vector<std::int64_t>{0, 0, 0}, mode, {},
                                                       std::vector<float>(16, 1.0f));
      EXPECT_TRUE(bags.unique_ids.empty()) << to_string(mode);
    }
    // Only padding: nothing to fold.
    const std::vector<Index> padding(5, static_cast<Index>(kPadding));
    EXPECT_TRUE(table.sparse_grad(IndexTensor(padding), std::vector<float>(40, 1.0f)).unique_ids.empty());
  });
}

TEST_P(SparseGradConformance, OutOfRangeUnderBothBoundsChecks) {
  for_each_index_type([&](auto index) {
    using Index = decltype(index);
    std::vector<Index> ids = random_ids<Index>(400, 8);
    ids[17] = static_cast<Index>(kRows);
    ids[300] = Index{-1};
    const auto grad = random_values(ids.size() * 4, 9);
    const auto erroring = on_backend(config_of(4));
    try {
      (void)erroring.sparse_grad(IndexTensor(ids), grad);
      ADD_FAILURE() << "a bad id was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::out_of_range) << e.what();
    }
    const auto filling = on_backend(config_of(4, BoundsCheck::zero_fill));
    const auto cpu = on_cpu(config_of(4, BoundsCheck::zero_fill));
    const SparseGrad got = filling.sparse_grad(IndexTensor(ids), grad);
    EXPECT_TRUE(same_bits(got, reference::sparse_grad(matrix_of(filling), ids, grad)));
    EXPECT_TRUE(same_bits(got, cpu.sparse_grad(IndexTensor(ids), grad)));
  });
}

INSTANTIATE_TEST_SUITE_P(On, SparseGradConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
