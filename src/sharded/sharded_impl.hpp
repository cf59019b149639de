#pragma once
// The state behind ShardedEmbeddingTable, shared by the files that implement its methods (MPI builds).

#include <embedkit/sharded_table.hpp>

#include "sharded/mpi_exchange.hpp"
#include "sharded/row_layout.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace embedkit {

struct ShardedEmbeddingTable::Impl {
  TableConfig config;  // the whole table's, with the seed every rank uses
  std::unique_ptr<detail::MpiExchange> exchange;
  std::optional<detail::RowLayout> layout;
  std::optional<EmbeddingTable> shard;  // this rank's rows
  std::atomic<std::int64_t> out_of_range_count{0};
};

namespace detail {

/// Opens a collective call's account on construction and closes it on destruction.
class CallScope {
 public:
  explicit CallScope(MpiExchange& exchange) : exchange_(exchange) { exchange_.begin_call(); }
  ~CallScope() { exchange_.end_call(); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  MpiExchange& exchange_;
};

/// The config of `rank`'s shard of a table of `config`: its rows, its row of padding_idx (if it
/// holds it), ids that the sharded call has already checked, and a workspace for every rank's
/// batch arriving at once (world × max_batch_lookups).
TableConfig shard_config(const TableConfig& config, const RowLayout& layout, int rank);

/// Collective: the rows of `ids` (distinct, in range, sorted), ids.size() × dim, from their owners.
std::vector<float> fetch_rows(const ShardedEmbeddingTable::Impl& impl, const std::vector<std::int64_t>& ids);

/// Checks this rank's ids as bounds_check says: under "error" throws out_of_range naming the first
/// bad position, under "zero_fill" returns how many there are (counted once the call succeeds).
std::int64_t check_sharded_ids(const ShardedEmbeddingTable::Impl& impl, const IndexTensor& indices);

/// Counts ids read as zeros, with a warning the first time and each time the total doubles.
void record_zero_filled(ShardedEmbeddingTable::Impl& impl, std::int64_t count);

/// Fails alike on every rank when the largest local batch times the world size exceeds what one MPI
/// exchange can count (int).
void check_exchange_size(const MpiExchange& exchange, std::int64_t largest_batch);

}  // namespace detail
}  // namespace embedkit
