// PooledConformance lookups on every backend present: within the reference's error bound and the CPU's bits,
// for every mode, with and without per-sample weights, on random bags (empty ones, duplicates, a hot
// row, padding), adversarial bags, empty batches, both id types and every dim; bad ids as lookups.
#include "tests/conformance/conformance.hpp"

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;

constexpr PoolingMode kModes[] = {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn, PoolingMode::max};

class PooledConformance : public OnBackend {};

TEST_P(PooledConformance, RandomBagsEveryModeAndDim) {
  for (const std::int64_t dim : kDims) {
    const auto table = on_backend(config_of(dim));
    const auto cpu = on_cpu(config_of(dim));
    const auto matrix = matrix_of(table);
    for_each_index_type([&](auto index) {
      using Index = decltype(index);
      const auto offsets = random_offsets(120, 40, static_cast<std::uint64_t>(dim));
      const auto ids = random_ids<Index>(static_cast<std::size_t>(offsets.back()), static_cast<std::uint64_t>(dim) + 1);
      const auto sample_weights = random_values(ids.size(), 3, 0.25f, 2.0f);
      for (const PoolingMode mode : kModes) {
        for (const bool weighted : {false, true}) {
          if (weighted && mode == PoolingMode::max) continue;
          const std::vector<float> w = weighted ? sample_weights : std::vector<float>{};
          const auto got = table.lookup_pooled(IndexTensor(ids), offsets, mode, w);
          const std::string what = std::string(to_string(mode)) + (weighted ? " weighted" : "") + ", dim " +
                                   std::to_string(dim) + ", " + std::to_string(sizeof(Index) * 8) + "-bit ids";
          EXPECT_EQ(got.shape, (std::vector<std::int64_t>{120, dim})) << what;
          EXPECT_TRUE(within(got.values, reference::pooled(matrix, ids, offsets, mode, w))) << what;
          EXPECT_TRUE(same_bits(got.values, cpu.lookup_pooled(IndexTensor(ids), offsets, mode, w).values)) << what;
        }
      }
    });
  }
}

TEST_P(PooledConformance, AdversarialBags) {
  // Bags: empty, one entry, duplicates, all padding, padding inside, the hot row 40 times (two
  // pieces of the fold), weights that cancel, empty at the end.
  std::vector<std::int64_t> ids = {9, 4, 4, 4, kPadding, kPadding, 1, kPadding, 2, 6, 7};
  std::vector<std::int64_t> offsets = {0, 0, 1, 4, 6, 9};
  std::vector<float> w = {0.5f, 2, 2, 2, 1, 1, 3, 1, 0.5f, 1, -1};
  for (int k = 0; k < 40; ++k) {
    ids.push_back(kHot);
    w.push_back(1.0f + static_cast<float>(k) / 8);
  }
  offsets.push_back(9 + 2);  // {6, 7}: weights 1 and -1 cancel
  offsets.push_back(static_cast<std::int64_t>(ids.size()));
  offsets.push_back(static_cast<std::int64_t>(ids.size()));
  for (const std::int64_t dim : {std::int64_t{4}, std::int64_t{9}, std::int64_t{16}}) {
    const auto table = on_backend(config_of(dim));
    const auto cpu = on_cpu(config_of(dim));
    for (const PoolingMode mode : kModes) {
      for (const bool weighted : {false, true}) {
        if (weighted && mode == PoolingMode::max) continue;
        const std::vector<float> weights = weighted ? w : std::vector<float>{};
        const auto got = table.lookup_pooled(IndexTensor(ids), offsets, mode, weights).values;
        EXPECT_TRUE(within(got, reference::pooled(matrix_of(table), ids, offsets, mode, weights))) << to_string(mode);
        EXPECT_TRUE(same_bits(got, cpu.lookup_pooled(IndexTensor(ids), offsets, mode, weights).values))
            << to_string(mode);
        for (const std::int64_t bag : {0, 3, 7}) {  // empty, all padding, empty at the end: zeros
          for (std::int64_t c = 0; c < dim; ++c) EXPECT_EQ(got[static_cast<std::size_t>(bag * dim + c)], 0.0f);
        }
        if (weighted && mode == PoolingMode::mean) {  // Σw = 0: zeros, not a division by zero
          for (std::int64_t c = 0; c < dim; ++c) EXPECT_EQ(got[static_cast<std::size_t>(5 * dim + c)], 0.0f);
        }
      }
    }
  }
}

TEST_P(PooledConformance, EmptyBatches) {
  const auto table = on_backend(config_of(8));
  for_each_index_type([&](auto index) {
    const std::vector<decltype(index)> none;
    for (const PoolingMode mode : kModes) {
      const auto no_bags = table.lookup_pooled(IndexTensor(none), std::vector<std::int64_t>{0}, mode);
      EXPECT_EQ(no_bags.shape, (std::vector<std::int64_t>{0, 8}));
      const auto empty_bags = table.lookup_pooled(IndexTensor(none), std::vector<std::int64_t>{0, 0, 0}, mode);
      EXPECT_TRUE(same_bits(empty_bags.values, std::vector<float>(16, 0.0f))) << to_string(mode);
    }
  });
}

TEST_P(PooledConformance, OutOfRangeUnderBothBoundsChecks) {
  for_each_index_type([&](auto index) {
    using Index = decltype(index);
    const auto offsets = random_offsets(50, 12, 5);
    std::vector<Index> ids = random_ids<Index>(static_cast<std::size_t>(offsets.back()), 6);
    ids[ids.size() / 2] = Index{-1};
    ids[ids.size() - 1] = static_cast<Index>(kRows);
    const auto erroring = on_backend(config_of(12));
    const auto before = erroring.get_weights().values;
    for (const PoolingMode mode : kModes) {
      std::vector<float> out(50 * 12, -3.0f);
      try {
        erroring.lookup_pooled(IndexTensor(ids), offsets, mode, {}, out);
        ADD_FAILURE() << "a bad id was accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.status(), Status::out_of_range) << e.what();
      }
      EXPECT_TRUE(same_bits(out, std::vector<float>(out.size(), -3.0f))) << "the output was written";
    }
    EXPECT_TRUE(same_bits(erroring.get_weights().values, before));
    const auto filling = on_backend(config_of(12, BoundsCheck::zero_fill));
    const auto cpu = on_cpu(config_of(12, BoundsCheck::zero_fill));
    for (const PoolingMode mode : kModes) {
      const auto got = filling.lookup_pooled(IndexTensor(ids), offsets, mode).values;
      EXPECT_TRUE(within(got, reference::pooled(matrix_of(filling), ids, offsets, mode, {}))) << to_string(mode);
      EXPECT_TRUE(same_bits(got, cpu.lookup_pooled(IndexTensor(ids), offsets, mode).values)) << to_string(mode);
    }
    EXPECT_EQ(filling.out_of_range_count(), cpu.out_of_range_count());
  });
}

INSTANTIATE_TEST_SUITE_P(On, PooledConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
