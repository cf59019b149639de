#include "sharded/row_layout.hpp"

#include <embedkit/status.hpp>

#include "core/expects.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace embedkit {

const char* to_string(RowSplit split) noexcept { return split == RowSplit::modulo ? "modulo" : "contiguous"; }

RowSplit parse_row_split(std::string_view name) {
  if (name == "contiguous") return RowSplit::contiguous;
  if (name == "modulo") return RowSplit::modulo;
  throw Error(Status::invalid_argument, fmt::format("row split must be 'contiguous' or 'modulo', got '{}'", name));
}

std::vector<ShardRows> split_rows(std::int64_t input_dim, int world_size, RowSplit split) {
  const detail::RowLayout layout(input_dim, world_size, split);
  std::vector<ShardRows> shards;
  for (int r = 0; r < world_size; ++r) shards.push_back(layout.shard(r));
  return shards;
}

namespace detail {

RowLayout::RowLayout(std::int64_t rows, int world, RowSplit split)
    : rows_(rows), world_(world), split_(split), base_(0), extra_(0) {
  EMBEDKIT_EXPECTS(world >= 1 && rows >= world, Status::invalid_argument,
                   "a table of {} rows cannot be split over {} ranks: every rank must hold at least one "
                   "row (1 <= ranks <= input_dim)",
                   rows, world);
  base_ = rows / world;
  extra_ = rows % world;
}

int RowLayout::owner(std::int64_t id) const noexcept {
  if (split_ == RowSplit::modulo) return static_cast<int>(id % world_);
  const std::int64_t long_rows = extra_ * (base_ + 1);  // the rows of the ranks holding one more
  return static_cast<int>(id < long_rows ? id / (base_ + 1) : extra_ + (id - long_rows) / base_);
}

std::int64_t RowLayout::local(std::int64_t id) const noexcept {
  if (split_ == RowSplit::modulo) return id / world_;
  return id - shard(owner(id)).first;
}

ShardRows RowLayout::shard(int rank) const noexcept {
  ShardRows rows;
  rows.rank = rank;
  if (split_ == RowSplit::modulo) {
    rows.first = rank;
    rows.stride = world_;
    rows.count = (rows_ - rank + world_ - 1) / world_;
    return rows;
  }
  rows.first = rank * base_ + std::min<std::int64_t>(rank, extra_);
  rows.count = base_ + (rank < extra_ ? 1 : 0);
  return rows;
}

}  // namespace detail
}  // namespace embedkit
