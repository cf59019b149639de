#pragma once
// Which rank owns an id of a sharded table, and which of its rows the id is there.

#include <embedkit/sharded_table.hpp>

#include <cstdint>

namespace embedkit::detail {

/// The split of `rows` rows over `world` ranks (1 <= world <= rows, checked by the constructor).
class RowLayout {
 public:
  RowLayout(std::int64_t rows, int world, RowSplit split);

  /// The rank holding id (0 <= id < rows).
  int owner(std::int64_t id) const noexcept;
  /// The id's row in its owner's shard.
  std::int64_t local(std::int64_t id) const noexcept;
  /// The rows `rank` holds.
  ShardRows shard(int rank) const noexcept;
  int world() const noexcept { return world_; }
  std::int64_t rows() const noexcept { return rows_; }
  RowSplit split() const noexcept { return split_; }

 private:
  std::int64_t rows_;
  int world_;
  RowSplit split_;
  std::int64_t base_;   // contiguous: every rank holds at least this many rows...
  std::int64_t extra_;  // ...and the first `extra_` ranks one more
};

}  // namespace embedkit::detail
