// cpu::group_positions and cpu::group_bags against a plain stable sort of (id, position), on
// random batches with duplicates, a hot id, padding, ids outside the table and empty bags, through
// the packed radix path and the wide-key path (ids whose bits and the slots' bits exceed 64).
#include <gtest/gtest.h>

#include "cpu/segments.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace {

using embedkit::cpu::Segments;

// The grouping written plainly: kept (id, slot) pairs sorted stably by id, then run-length encoded.
Segments reference_grouping(const std::vector<std::int64_t>& ids, const std::vector<std::int64_t>& slot_of,
                            std::int64_t input_dim, std::int64_t padding_idx) {
  std::vector<std::pair<std::int64_t, std::int64_t>> kept;
  for (std::size_t p = 0; p < ids.size(); ++p) {
    if (ids[p] >= 0 && ids[p] < input_dim && ids[p] != padding_idx) kept.emplace_back(ids[p], slot_of[p]);
  }
  std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Segments segments;
  segments.run_begin.push_back(0);
  for (std::size_t k = 0; k < kept.size(); ++k) {
    if (k > 0 && kept[k].first != kept[k - 1].first) segments.run_begin.push_back(static_cast<std::int64_t>(k));
    if (k == 0 || kept[k].first != kept[k - 1].first) segments.unique_ids.push_back(kept[k].first);
    segments.positions.push_back(kept[k].second);
  }
  if (!kept.empty()) segments.run_begin.push_back(static_cast<std::int64_t>(kept.size()));
  return segments;
}

void expect_same(const Segments& got, const Segments& expected) {
  EXPECT_EQ(got.unique_ids, expected.unique_ids);
  EXPECT_EQ(got.run_begin, expected.run_begin);
  EXPECT_EQ(got.positions, expected.positions);
}

struct Batch {
  std::vector<std::int64_t> ids, offsets, position, bag_of;
};

// Bags of 0..40 entries (some empty); a third of the ids one hot id, some padding, some outside
// [0, input_dim) on either side.
Batch random_batch(std::int64_t input_dim, std::int64_t padding_idx, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::int64_t hot = input_dim - 1;
  Batch batch;
  batch.offsets.push_back(0);
  for (int b = 0; b < 700; ++b) {
    const auto size = static_cast<std::int64_t>(rng() % 41);
    for (std::int64_t j = 0; j < size; ++j) {
      const std::uint64_t draw = rng() % 100;
      std::int64_t id =
          static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(std::min<std::int64_t>(input_dim, 5000)));
      if (draw < 33) id = hot;
      else if (draw < 38) id = padding_idx;
      else if (draw < 41) id = input_dim + static_cast<std::int64_t>(rng() % 3);
      else if (draw < 43) id = -1 - static_cast<std::int64_t>(rng() % 3);
      batch.position.push_back(static_cast<std::int64_t>(batch.ids.size()));
      batch.bag_of.push_back(b);
      batch.ids.push_back(id);
    }
    batch.offsets.push_back(static_cast<std::int64_t>(batch.ids.size()));
  }
  return batch;
}

class Grouping : public ::testing::TestWithParam<std::int64_t> {};

TEST_P(Grouping, PositionsAndBagsMatchAStableSort) {
  const std::int64_t input_dim = GetParam();
  const std::int64_t padding_idx = 3;
  const embedkit::detail::Padding padding{true, padding_idx};
  const Batch batch = random_batch(input_dim, padding_idx, static_cast<std::uint64_t>(input_dim));
  const auto count = static_cast<std::int64_t>(batch.ids.size());
  const auto bags = static_cast<std::int64_t>(batch.offsets.size()) - 1;
  expect_same(embedkit::cpu::group_positions(batch.ids.data(), count, input_dim, padding),
              reference_grouping(batch.ids, batch.position, input_dim, padding_idx));
  expect_same(embedkit::cpu::group_bags(batch.ids.data(), batch.offsets.data(), bags, input_dim, padding),
              reference_grouping(batch.ids, batch.bag_of, input_dim, padding_idx));
  std::vector<std::int32_t> narrow_ids;
  if (input_dim <= INT32_MAX) {
    for (const std::int64_t id : batch.ids) narrow_ids.push_back(static_cast<std::int32_t>(id));
    expect_same(embedkit::cpu::group_bags(narrow_ids.data(), batch.offsets.data(), bags, input_dim, padding),
                reference_grouping(batch.ids, batch.bag_of, input_dim, padding_idx));
  }
}

// 10 000 rows packs id and slot in one word; 2^60 rows leaves too few bits for the slots.
INSTANTIATE_TEST_SUITE_P(InputDims, Grouping, ::testing::Values(std::int64_t{10000}, std::int64_t{1} << 60));

TEST(Grouping, AnEmptyBatchAndOnlyPaddingGiveNoSegments) {
  const std::vector<std::int64_t> offsets = {0, 0, 0};
  const Segments none =
      embedkit::cpu::group_bags(static_cast<const std::int64_t*>(nullptr), offsets.data(), 2, 10, {true, 0});
  EXPECT_EQ(none.size(), 0);
  EXPECT_EQ(none.run_begin, (embedkit::detail::RecycledVector<std::int64_t>{0}));
  const std::vector<std::int64_t> padding = {0, 0, 0}, padding_offsets = {0, 1, 3};
  const Segments only_padding = embedkit::cpu::group_bags(padding.data(), padding_offsets.data(), 2, 10, {true, 0});
  EXPECT_EQ(only_padding.size(), 0);
  EXPECT_TRUE(only_padding.positions.empty());
}

}  // namespace

TEST(Grouping, WithoutPaddingEveryIdInTheTableIsKept) {
  // No padding_idx: id 0 is an ordinary id, and -1 is left out as outside the table, not as padding.
  const std::vector<std::int64_t> ids = {0, -1, 0, 9};
  const Segments segments = embedkit::cpu::group_positions(ids.data(), 4, 10, embedkit::detail::Padding{});
  EXPECT_EQ(segments.unique_ids, (embedkit::detail::RecycledVector<std::int64_t>{0, 9}));
  EXPECT_EQ(segments.positions, (embedkit::detail::RecycledVector<std::int64_t>{0, 2, 3}));
}
