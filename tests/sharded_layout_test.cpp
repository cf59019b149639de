// How rows are dealt to ranks (pure arithmetic, any build), and what a build without MPI answers.
#include <embedkit/c_api_sharded.h>
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace embedkit {
namespace {

// The owner of each id, from the split as a reference would deal them.
std::vector<int> reference_owners(std::int64_t rows, int world, RowSplit split) {
  std::vector<int> owner(static_cast<std::size_t>(rows));
  for (std::int64_t id = 0; id < rows; ++id) {
    if (split == RowSplit::modulo) {
      owner[static_cast<std::size_t>(id)] = static_cast<int>(id % world);
      continue;
    }
    // Consecutive ranges, the first rows % world ranks one row longer.
    std::int64_t begin = 0;
    for (int r = 0; r < world; ++r) {
      const std::int64_t length = rows / world + (r < rows % world ? 1 : 0);
      if (id < begin + length) {
        owner[static_cast<std::size_t>(id)] = r;
        break;
      }
      begin += length;
    }
  }
  return owner;
}

TEST(SplitRows, EveryRowHasExactlyTheReferenceOwner) {
  for (const RowSplit split : {RowSplit::contiguous, RowSplit::modulo}) {
    for (const std::int64_t rows : {1, 2, 7, 64, 397}) {
      for (int world = 1; world <= std::min<std::int64_t>(rows, 9); ++world) {
        const std::vector<ShardRows> shards = split_rows(rows, world, split);
        ASSERT_EQ(shards.size(), static_cast<std::size_t>(world));
        std::vector<int> owner(static_cast<std::size_t>(rows), -1);
        for (const ShardRows& shard : shards) {
          EXPECT_GE(shard.count, 1);
          for (std::int64_t k = 0; k < shard.count; ++k) {
            const std::int64_t id = shard.first + k * shard.stride;
            ASSERT_TRUE(id >= 0 && id < rows) << id;
            EXPECT_EQ(owner[static_cast<std::size_t>(id)], -1) << "row " << id << " held twice";
            owner[static_cast<std::size_t>(id)] = shard.rank;
          }
        }
        EXPECT_EQ(owner, reference_owners(rows, world, split)) << to_string(split) << " " << rows << " on " << world;
      }
    }
  }
}

TEST(SplitRows, MoreRanksThanRowsIsAnError) {
  try {
    (void)split_rows(3, 4, RowSplit::contiguous);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::invalid_argument);
    EXPECT_STREQ(e.what(),
                 "a table of 3 rows cannot be split over 4 ranks: every rank must hold at least one row "
                 "(1 <= ranks <= input_dim)");
  }
  EXPECT_THROW((void)split_rows(3, 0, RowSplit::modulo), Error);
}

TEST(SplitRows, NamesReadBack) {
  EXPECT_EQ(parse_row_split(to_string(RowSplit::modulo)), RowSplit::modulo);
  EXPECT_EQ(parse_row_split(to_string(RowSplit::contiguous)), RowSplit::contiguous);
  EXPECT_THROW((void)parse_row_split("striped"), Error);
}

// Only a build without MPI reaches these: the entry points exist and say why they cannot work.
TEST(WithoutMpi, ShardedTablesAreUnsupported) {
  if (ShardedEmbeddingTable::available()) GTEST_SKIP() << "built with MPI: sharded_test covers the tables";
  TableConfig config;
  config.input_dim = 10;
  config.output_dim = 4;
  try {
    ShardedEmbeddingTable table(config);
    ADD_FAILURE() << "a sharded table was made without MPI";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::unsupported);
    EXPECT_STREQ(e.what(), "sharded tables are not available: embedkit was built without MPI");
  }
  EXPECT_EQ(ek_sharded_available(), 0);
  ek_sharded_table* table = nullptr;
  EXPECT_EQ(ek_sharded_create("{\"input_dim\": 10, \"output_dim\": 4}", nullptr, nullptr, &table), EK_UNSUPPORTED);
  EXPECT_STREQ(ek_last_error(), "sharded tables are not available: embedkit was built without MPI");
  EXPECT_EQ(table, nullptr);
}

}  // namespace
}  // namespace embedkit
