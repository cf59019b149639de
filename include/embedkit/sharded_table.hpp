#pragma once
/// @file sharded_table.hpp
/// @brief ShardedEmbeddingTable: one embedding matrix split row-wise across the ranks of an MPI
/// communicator, each rank's rows an ordinary EmbeddingTable placed by the usual policy.

#include <embedkit/config.hpp>
#include <embedkit/context.hpp>
#include <embedkit/export.h>
#include <embedkit/pooling.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>
#include <embedkit/tensor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace embedkit {

/// @brief How the rows of a sharded table are dealt to the ranks.
enum class RowSplit {
  contiguous,  ///< rank r holds one range of consecutive rows; the first input_dim % world ranks hold one more
  modulo,      ///< rank r holds the rows whose id % world_size == r
};

/// @brief "contiguous" or "modulo".
EMBEDKIT_API const char* to_string(RowSplit split) noexcept;
/// @brief Reads "contiguous" or "modulo". @throws Error(invalid_argument) naming the text.
EMBEDKIT_API RowSplit parse_row_split(std::string_view name);

/// @brief The rows one rank holds: its local row k is the table's row first + k·stride.
struct ShardRows {
  int rank = 0;
  std::int64_t first = 0;
  std::int64_t stride = 1;
  std::int64_t count = 0;
};

/// @brief How a table of `input_dim` rows is split over `world_size` ranks, one entry per rank. Pure
/// arithmetic: available without MPI (`embedkit plan --ranks`).
/// @throws Error(invalid_argument) unless 1 <= world_size <= input_dim.
EMBEDKIT_API std::vector<ShardRows> split_rows(std::int64_t input_dim, int world_size, RowSplit split);

/// @brief An MPI communicator handed over without <mpi.h>: the address of the caller's MPI_Comm,
/// read during the call only; null means MPI_COMM_WORLD. Write `MpiComm::of(comm)`.
struct MpiComm {
  const void* handle = nullptr;
  /// @brief The communicator `comm`, an MPI_Comm lvalue of the same MPI the library was built with.
  template <class Comm>
  static MpiComm of(const Comm& comm) {
    return MpiComm{&comm};
  }
};

/// @brief What the last collective call cost this rank.
struct ExchangeStats {
  std::uint64_t bytes_sent = 0;      ///< to other ranks (what a network would carry), ids and rows
  std::uint64_t bytes_received = 0;  ///< from other ranks
  double seconds = 0;                ///< the whole call
  double seconds_communicating = 0;  ///< of which inside MPI calls (including waiting for slower ranks)
};

/// @brief An embedding matrix of input_dim rows split row-wise across the ranks of a communicator.
///
/// Creation, lookups, train steps, set_learning_rate, get_weights, save and load are collective:
/// each rank of the communicator makes the same calls in the same order, one at a time (not from
/// several threads), each with its own local batch (of any size, empty included); the accessors
/// (config() to last_exchange()) are local. Results are bitwise those of one EmbeddingTable of the same config given
/// the concatenation of the ranks' batches in rank order, on CPU shards (see docs/numerics.md, floating-point
/// contract). A call that fails on any rank fails on every rank with the same Error, whose message starts with the rank
/// it came from (`rank 1: indices[3] = 15000 is not in [0, 10000)`), and changes no shard. A rank that dies ends the
/// job (MPI's default error handling).
class EMBEDKIT_API ShardedEmbeddingTable {
 public:
  /// @brief Whether this build has MPI. Without it every constructor throws Error(unsupported).
  static bool available() noexcept;

  /// @brief Collective over `comm` (which MPI_Init must have set up; it is duplicated, so the
  /// table's traffic never mixes with the caller's). Every rank passes the same config; without a
  /// seed, rank 0 draws one for all. Each rank's rows become an EmbeddingTable on `context`, holding
  /// exactly the values one table of `config` would hold in those rows.
  /// @throws Error: unsupported (built without MPI; a custom optimizer), invalid_argument (a bad
  ///         config, configs that differ between ranks, MPI not initialised, input_dim below the
  ///         world size), out_of_memory (a shard that does not fit, on any rank).
  explicit ShardedEmbeddingTable(TableConfig config, RowSplit split = RowSplit::contiguous, MpiComm comm = {},
                                 Context& context = Context::default_context());
  /// @brief As the constructor, from TableConfig JSON and a split name ("contiguous", "modulo"),
  /// both read inside the collective call: a rank whose JSON is bad fails every rank's call.
  static ShardedEmbeddingTable from_json(std::string_view config_json, std::string_view split = "contiguous",
                                         MpiComm comm = {}, Context& context = Context::default_context());
  ~ShardedEmbeddingTable();
  ShardedEmbeddingTable(ShardedEmbeddingTable&&) noexcept;
  ShardedEmbeddingTable& operator=(ShardedEmbeddingTable&&) noexcept;
  ShardedEmbeddingTable(const ShardedEmbeddingTable&) = delete;
  ShardedEmbeddingTable& operator=(const ShardedEmbeddingTable&) = delete;

  /// @brief The table's config (the whole matrix's input_dim), with the seed all ranks use.
  const TableConfig& config() const noexcept;
  std::int64_t input_dim() const noexcept;
  std::int64_t output_dim() const noexcept;
  RowSplit split() const noexcept;
  int rank() const noexcept;
  int world_size() const noexcept;
  /// @brief The rows `rank` holds. @throws Error(invalid_argument) for a rank outside the world.
  ShardRows rows(int rank) const;
  /// @brief This rank's rows, an ordinary table (local row k is row rows(rank()).first + k·stride).
  const EmbeddingTable& shard() const noexcept;
  /// @brief Optimizer steps taken (the same on every rank).
  std::int64_t step() const noexcept;
  /// @brief Ids of this rank's batches read as zeros so far under bounds_check zero_fill.
  std::int64_t out_of_range_count() const noexcept;
  /// @brief Bytes and time of this rank's last collective call.
  ExchangeStats last_exchange() const noexcept;

  /// @brief Gathers the rows of this rank's `indices` from their owners: shape indices.shape +
  /// (output_dim,). Each rank sends every distinct id once. @throws as EmbeddingTable::lookup.
  Array<float> lookup(const IndexTensor& indices) const;
  /// @brief As lookup, into caller memory of exactly indices.size() × output_dim floats.
  void lookup(const IndexTensor& indices, std::span<float> out) const;

  /// @brief Pools this rank's bags (as EmbeddingTable::lookup_pooled): the distinct rows are
  /// fetched from their owners and the bags reduced here, in position order.
  Array<float> lookup_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                             std::span<const float> per_sample_weights = {}) const;
  /// @brief As lookup_pooled, into caller memory of exactly bags × output_dim floats.
  void lookup_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                     std::span<const float> per_sample_weights, std::span<float> out) const;

  /// @brief One training step from every rank's batch: each gradient row goes to its id's owner,
  /// which folds each id's rows in (rank, position) order, the canonical order of the concatenated
  /// batch, then applies the optimizer. The step count grows by one on every rank.
  /// @throws as EmbeddingTable::train_step; nothing changes on any rank then.
  void train_step(const IndexTensor& indices, std::span<const float> grad_out);

  /// @brief One training step of this rank's pooled bags (EmbeddingTable::train_step_pooled's
  /// arguments): each entry's gradient row is computed here (for max, from the rows its bags
  /// read, fetched from their owners) and sent to its owner as in train_step, so the step is
  /// bitwise one table's pooled step on the concatenated bags.
  void train_step_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                         std::span<const float> per_sample_weights, std::span<const float> grad_bags);

  /// @brief Sets the learning rate of the next steps; every rank must pass the same value.
  /// @throws Error(invalid_argument) for a bad value or values that differ between ranks.
  void set_learning_rate(double learning_rate);

  /// @brief The whole matrix on every rank, shape (input_dim, output_dim) (for tests and small tables).
  Array<float> get_weights() const;

  /// @brief Saves the table into `directory` (created if missing): each rank its rows with
  /// EmbeddingTable::save into `directory`/rank<R>of<W> (crash-safe, as that save), then rank 0
  /// sharded.json, naming the config, split, world size, step and each rank's rows, written aside
  /// and renamed into place once every shard is saved. Not for concurrent saves into one directory.
  /// @throws Error(io_error) naming the file, on every rank.
  void save(std::string_view directory) const;
  /// @brief Loads a checkpoint saved by save() onto this communicator, of any size: each rank reads
  /// its rows (weights, optimizer state) from the shards that held them, checksums checked, so
  /// the table continues bitwise as it would have on the world size it was saved from.
  /// @throws Error(io_error) naming the file (a missing shard, a checksum, shards saved at
  ///         different steps), on every rank; as the constructor otherwise.
  static ShardedEmbeddingTable load(std::string_view directory, MpiComm comm = {},
                                    Context& context = Context::default_context());

  /// @brief Takes this rank's part in a collective call that failed here before reaching the table
  /// (a binding's bad tensor, say) while the other ranks make the call: every rank's call then
  /// throws `error`, its message prefixed with this rank. Always throws.
  [[noreturn]] void fail_call(const Error& error) const;

  struct Impl;  ///< Opaque: the communicator, layout and shard, defined inside the library.

 private:
  // Creation: `config` makes the table's config and split inside the first collective step, and
  // `shard` this rank's table of `rows` from its config, given the whole table's.
  using ConfigSource = std::function<std::pair<TableConfig, RowSplit>()>;
  using ShardSource = std::function<EmbeddingTable(TableConfig shard_config, const ShardRows& rows,
                                                   const TableConfig& config, Context& context)>;
  ShardedEmbeddingTable(const ConfigSource& config, const ShardSource& shard, MpiComm comm, Context& context);
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedkit
