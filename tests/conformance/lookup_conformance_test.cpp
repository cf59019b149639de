// Lookups on every backend present: the reference's rows and the CPU's, bit for bit, on random
// batches with duplicates, a hot row and padding, empty batches, both id types, every dim; bad ids
// fail under "error" with nothing written and read as zeros under "zero_fill".
#include "tests/conformance/conformance.hpp"

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;

class LookupConformance : public OnBackend {};

TEST_P(LookupConformance, RandomBatchesEveryDim) {
  for (const std::int64_t dim : kDims) {
    const auto table = on_backend(config_of(dim));
    const auto cpu = on_cpu(config_of(dim));
    ASSERT_TRUE(same_bits(table.get_weights().values, cpu.get_weights().values)) << "initial weights, dim " << dim;
    for_each_index_type([&](auto index) {
      using Index = decltype(index);
      const auto ids = random_ids<Index>(1000 + static_cast<std::size_t>(dim), static_cast<std::uint64_t>(dim));
      const auto got = table.lookup(IndexTensor(ids));
      EXPECT_EQ(got.shape, (std::vector<std::int64_t>{static_cast<std::int64_t>(ids.size()), dim}));
      EXPECT_TRUE(same_bits(got.values, reference::lookup(matrix_of(table), ids))) << "dim " << dim;
      EXPECT_TRUE(same_bits(got.values, cpu.lookup(IndexTensor(ids)).values)) << "dim " << dim;
    });
  }
}

TEST_P(LookupConformance, TwoDimensionalBatchKeepsItsShape) {
  const auto table = on_backend(config_of(8));
  const std::vector<std::int32_t> ids = {1, kHot, kHot, kPadding, 0, 96};
  const auto got = table.lookup(IndexTensor(ids.data(), {2, 3}));
  EXPECT_EQ(got.shape, (std::vector<std::int64_t>{2, 3, 8}));
  EXPECT_TRUE(same_bits(got.values, reference::lookup(matrix_of(table), ids)));
}

TEST_P(LookupConformance, EmptyBatch) {
  for (const std::int64_t dim : {std::int64_t{1}, std::int64_t{16}}) {
    const auto table = on_backend(config_of(dim));
    for_each_index_type([&](auto index) {
      const std::vector<decltype(index)> none;
      const auto got = table.lookup(IndexTensor(none));
      EXPECT_TRUE(got.values.empty());
      EXPECT_EQ(got.shape, (std::vector<std::int64_t>{0, dim}));
    });
  }
}

TEST_P(LookupConformance, OutOfRangeUnderErrorWritesNothing) {
  for (const std::int64_t dim : {std::int64_t{3}, std::int64_t{16}}) {
    const auto table = on_backend(config_of(dim));
    const auto before = table.get_weights().values;
    for_each_index_type([&](auto index) {
      using Index = decltype(index);
      for (const Index bad : {static_cast<Index>(kRows), Index{-1}}) {
        std::vector<Index> ids = random_ids<Index>(300, 4);
        ids[123] = bad;
        std::vector<float> out(ids.size() * static_cast<std::size_t>(dim), -7.0f);
        try {
          table.lookup(IndexTensor(ids), out);
          ADD_FAILURE() << "id " << bad << " was accepted";
        } catch (const Error& e) {
          EXPECT_EQ(e.status(), Status::out_of_range);
          EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
        }
        EXPECT_TRUE(same_bits(out, std::vector<float>(out.size(), -7.0f))) << "the output was written";
      }
    });
    EXPECT_TRUE(same_bits(table.get_weights().values, before));
    EXPECT_EQ(table.out_of_range_count(), 0);
  }
}

TEST_P(LookupConformance, OutOfRangeUnderZeroFillReadsZeros) {
  for (const std::int64_t dim : {std::int64_t{7}, std::int64_t{32}}) {
    const auto table = on_backend(config_of(dim, BoundsCheck::zero_fill));
    const auto cpu = on_cpu(config_of(dim, BoundsCheck::zero_fill));
    for_each_index_type([&](auto index) {
      using Index = decltype(index);
      std::vector<Index> ids = random_ids<Index>(500, 9);
      ids[0] = Index{-1};
      ids[250] = static_cast<Index>(kRows);
      ids[499] = std::numeric_limits<Index>::max();
      const auto got = table.lookup(IndexTensor(ids)).values;
      EXPECT_TRUE(same_bits(got, reference::lookup(matrix_of(table), ids)));
      EXPECT_TRUE(same_bits(got, cpu.lookup(IndexTensor(ids)).values));
    });
    EXPECT_EQ(table.out_of_range_count(), 6);
    EXPECT_EQ(table.out_of_range_count(), cpu.out_of_range_count());
  }
}

INSTANTIATE_TEST_SUITE_P(On, LookupConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
