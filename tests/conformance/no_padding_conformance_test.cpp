// Id -1 in a table without a padding_idx, on every backend present: an id out of range like any
// other (a backend must not mistake it for "no padding" or for padding), under "error" naming the
// CPU's position at every entry point with nothing written or changed, under "zero_fill" read as
// zeros, given no gradient and counted as the CPU counts it; both id types, fused and unfused
// dims.
#include "tests/conformance/optimizer_cases.hpp"

#include <functional>

namespace {

using namespace embedkit::testing::conformance;
using embedkit::EmbeddingTable;
using embedkit::TableConfig;

class NoPaddingConformance : public OnBackend {};

TableConfig without_padding(std::int64_t dim, BoundsCheck bounds) {
  TableConfig config = optimizer_config(kOptimizers[3], dim, bounds);  // adagrad
  config.padding_idx.reset();
  return config;
}

// Every entry point that reads ids, as one call returning what it produced (its output, or the
// table's weights after a step).
template <class Index>
std::vector<std::pair<std::string, std::function<std::vector<float>(EmbeddingTable&)>>> calls(
    const std::vector<Index>& ids, std::int64_t dim) {
  const std::vector<std::int64_t> offsets = {0, 40, 40, static_cast<std::int64_t>(ids.size())};
  const auto grad = random_values(ids.size() * static_cast<std::size_t>(dim), 1);
  const auto grad_bags = random_values(3 * static_cast<std::size_t>(dim), 2);
  const auto weights = random_values(ids.size(), 3, 0.5f, 2.0f);
  return {
      {"lookup", [=](EmbeddingTable& t) { return t.lookup(IndexTensor(ids)).values; }},
      {"lookup_pooled",
       [=](EmbeddingTable& t) { return t.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::sum, weights).values; }},
      {"sparse_grad", [=](EmbeddingTable& t) { return t.sparse_grad(IndexTensor(ids), grad).rows; }},
      {"sparse_grad_pooled",
       [=](EmbeddingTable& t) {
         return t.sparse_grad_pooled(IndexTensor(ids), offsets, PoolingMode::mean, weights, grad_bags).rows;
       }},
      {"train_step",
       [=](EmbeddingTable& t) {
         t.train_step(IndexTensor(ids), grad);
         return t.get_weights().values;
       }},
      {"train_step_pooled",
       [=](EmbeddingTable& t) {
         t.train_step_pooled(IndexTensor(ids), offsets, PoolingMode::max, {}, grad_bags);
         return t.get_weights().values;
       }},
  };
}

template <class Call>
std::string error_of(const Call& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_P(NoPaddingConformance, MinusOneIsOutOfRange) {
  for (const std::int64_t dim : {std::int64_t{4}, std::int64_t{33}, std::int64_t{300}}) {
    for_each_index_type([&](auto index) {
      using Index = decltype(index);
      std::vector<Index> ids = random_ids<Index>(100, static_cast<std::uint64_t>(dim));
      ids[57] = Index{-1};
      ids[90] = Index{-1};
      const std::string types = ", dim " + std::to_string(dim) + ", " + std::to_string(sizeof(Index) * 8) + "-bit ids";
      for (const auto& [name, call] : calls(ids, dim)) {
        auto table = on_backend(without_padding(dim, BoundsCheck::error));
        auto cpu = on_cpu(without_padding(dim, BoundsCheck::error));
        const TableState before = state_of(table);
        const std::string got = error_of([&] { (void)call(table); });
        const std::string expected = error_of([&] { (void)call(cpu); });
        EXPECT_NE(expected.find("= -1 is not in [0, 97)"), std::string::npos) << name << types << ": " << expected;
        EXPECT_EQ(got, expected) << name << types;
        EXPECT_TRUE(same_bits(state_of(table), before)) << name << types;
      }
      for (const auto& [name, call] : calls(ids, dim)) {
        auto table = on_backend(without_padding(dim, BoundsCheck::zero_fill));
        auto cpu = on_cpu(without_padding(dim, BoundsCheck::zero_fill));
        EXPECT_TRUE(same_bits(call(table), call(cpu))) << name << types;
        EXPECT_TRUE(same_bits(state_of(table), state_of(cpu))) << name << types;
        EXPECT_EQ(table.out_of_range_count(), cpu.out_of_range_count()) << name << types;
        EXPECT_GT(cpu.out_of_range_count(), 0) << name << types;
      }
      // A plain lookup reads -1 as zeros.
      auto table = on_backend(without_padding(dim, BoundsCheck::zero_fill));
      const auto rows = table.lookup(IndexTensor(ids)).values;
      for (std::int64_t c = 0; c < dim; ++c) EXPECT_EQ(rows[static_cast<std::size_t>(57 * dim + c)], 0.0f) << types;
    });
  }
}

INSTANTIATE_TEST_SUITE_P(On, NoPaddingConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
