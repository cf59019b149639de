// cpu::bag_range_begin against a plain linear scan: the ranges cover every bag once, in order, and
// each starts where a plain walk over the bags first reaches its share of the work (entries + 1 per
// bag), on random bags, empty bags, one huge bag, no bags and more ranges than bags.
#include <gtest/gtest.h>

#include "cpu/bag_ranges.hpp"

#include <cstdint>
#include <random>
#include <vector>

namespace {

using embedkit::cpu::bag_range_begin;

// The first bag whose preceding work offsets[b] + b reaches ⌊total·part/parts⌋, walking from bag 0
// (the batches here are small enough for total·part to fit).
std::int64_t walked_begin(const std::vector<std::int64_t>& offsets, std::int64_t part, std::int64_t parts) {
  const auto bags = static_cast<std::int64_t>(offsets.size()) - 1;
  const std::int64_t share = (offsets.back() + bags) * part / parts;
  std::int64_t b = 0;
  while (b < bags && offsets[b] + b < share) ++b;
  return b;
}

void expect_ranges_match_walk(const std::vector<std::int64_t>& offsets, std::int64_t parts) {
  const auto bags = static_cast<std::int64_t>(offsets.size()) - 1;
  ASSERT_EQ(bag_range_begin(offsets.data(), bags, 0, parts), 0);
  ASSERT_EQ(bag_range_begin(offsets.data(), bags, parts, parts), bags);
  for (std::int64_t part = 0; part <= parts; ++part) {
    const std::int64_t begin = bag_range_begin(offsets.data(), bags, part, parts);
    EXPECT_EQ(begin, walked_begin(offsets, part, parts))
        << "part " << part << " of " << parts << ", " << bags << " bags";
    if (part > 0) {
      EXPECT_GE(begin, bag_range_begin(offsets.data(), bags, part - 1, parts));
    }
  }
}

std::vector<std::int64_t> offsets_of(const std::vector<std::int64_t>& sizes) {
  std::vector<std::int64_t> offsets = {0};
  for (const std::int64_t size : sizes) offsets.push_back(offsets.back() + size);
  return offsets;
}

TEST(BagRanges, RandomBagsSplitWhereAWalkReachesEachShare) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<std::int64_t> sizes(rng() % 300);
    for (auto& size : sizes) size = rng() % 4 == 0 ? 0 : static_cast<std::int64_t>(rng() % 64);
    for (const std::int64_t parts : {1, 2, 3, 7, 16, 64}) expect_ranges_match_walk(offsets_of(sizes), parts);
  }
}

TEST(BagRanges, AdversarialBatches) {
  for (const std::int64_t parts : {1, 2, 5, 16}) {
    expect_ranges_match_walk(offsets_of({}), parts);                  // no bags: every range is empty
    expect_ranges_match_walk(offsets_of({0, 0, 0}), parts);           // empty bags still cost their row
    expect_ranges_match_walk(offsets_of({1, 1000000, 1, 1}), parts);  // one huge bag takes its ranges whole
    expect_ranges_match_walk(offsets_of(std::vector<std::int64_t>(1000, 1)), parts);  // bags of one
  }
}

TEST(BagRanges, EqualBagsSplitEvenly) {
  const auto offsets = offsets_of(std::vector<std::int64_t>(1 << 20, 32));
  const std::int64_t bags = 1 << 20;
  for (std::int64_t part = 0; part <= 16; ++part) {
    EXPECT_EQ(bag_range_begin(offsets.data(), bags, part, 16), bags / 16 * part);
  }
}

TEST(BagRanges, HugeBatchesDoNotOverflow) {
  const std::int64_t entries = std::int64_t{1} << 61;                   // total work times parts would overflow 64 bits
  const std::vector<std::int64_t> offsets = {0, entries / 2, entries};  // total work 2^61 + 2
  EXPECT_EQ(bag_range_begin(offsets.data(), 2, 1, 1000), 1);            // share about 2^61/1000: past bag 0's work 0
  EXPECT_EQ(bag_range_begin(offsets.data(), 2, 500, 1000), 1);  // share 2^60 + 1: exactly bag 1's work before it
  EXPECT_EQ(bag_range_begin(offsets.data(), 2, 999, 1000), 2);  // share above 2^60 + 1: past bag 1
}

}  // namespace
