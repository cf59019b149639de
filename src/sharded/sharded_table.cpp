// ShardedEmbeddingTable (MPI builds): collective creation, the accessors, and whole-table reads.
#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>

#include "backend/backends.hpp"
#include "config/initializer_resolve.hpp"
#include "core/expects.hpp"
#include "core/log.hpp"
#include "sharded/sharded_impl.hpp"
#include "table/table_access.hpp"
#include "table/table_impl.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <bit>
#include <climits>
#include <cstring>
#include <limits>
#include <tuple>

namespace embedkit {
namespace {

using Impl = ShardedEmbeddingTable::Impl;

MPI_Comm communicator(MpiComm comm) {
  return comm.handle != nullptr ? *static_cast<const MPI_Comm*>(comm.handle) : MPI_COMM_WORLD;
}

// A new table's shard: its rows of the matrix one table of `config` would start from.
EmbeddingTable initial_shard(TableConfig shard_config, const ShardRows& rows, const TableConfig& config,
                             Context& context) {
  return detail::TableAccess::make_slice(std::move(shard_config), context,
                                         detail::RowSlice{config.input_dim, rows.first, rows.stride});
}

// Every rank must have passed the same config: compares each rank's hash of it with rank 0's.
void check_same_config(detail::MpiExchange& exchange, const TableConfig& config, RowSplit split) {
  const std::string json = config.to_json() + to_string(split);
  const std::vector<std::uint64_t> hashes = exchange.gather(XXH64(json.data(), json.size(), 0));
  for (std::size_t r = 1; r < hashes.size(); ++r) {
    EMBEDKIT_EXPECTS(hashes[r] == hashes[0], Status::invalid_argument,
                     "rank {}'s table config or row split differs from rank 0's: every rank must create "
                     "a sharded table with the same config and split",
                     r);
  }
}

}  // namespace

namespace detail {

TableConfig shard_config(const TableConfig& config, const RowLayout& layout, int rank) {
  TableConfig shard = config;
  shard.input_dim = layout.shard(rank).count;
  shard.name = fmt::format("{}.shard{}", config.name, rank);
  shard.bounds_check = BoundsCheck::error;  // the sharded call has checked the ids already
  // An owner may receive every rank's batch at once: its workspace is sized for that.
  shard.max_batch_lookups = config.max_batch_lookups > std::numeric_limits<std::int64_t>::max() / layout.world()
                                ? std::numeric_limits<std::int64_t>::max()
                                : config.max_batch_lookups * layout.world();
  shard.padding_idx.reset();
  if (config.padding_idx && layout.owner(*config.padding_idx) == rank)
    shard.padding_idx = layout.local(*config.padding_idx);
  return shard;
}

std::int64_t check_sharded_ids(const ShardedEmbeddingTable::Impl& impl, const IndexTensor& indices) {
  const std::int64_t input_dim = impl.config.input_dim;
  const IdCheck scan = host_ops().scan_ids(host_ids(indices), input_dim);
  if (scan.out_of_range == 0 || impl.config.bounds_check == BoundsCheck::zero_fill) return scan.out_of_range;
  throw Error(Status::out_of_range, out_of_range_message(indices, scan.first_position, scan.first_id, input_dim));
}

void record_zero_filled(ShardedEmbeddingTable::Impl& impl, std::int64_t count) {
  if (count == 0) return;
  const std::int64_t before = impl.out_of_range_count.fetch_add(count);
  const std::int64_t after = before + count;
  if (std::bit_width(static_cast<std::uint64_t>(before)) != std::bit_width(static_cast<std::uint64_t>(after))) {
    logger().warn("sharded table '{}', rank {}: {} out-of-range ids read as zeros ({} so far)", impl.config.name,
                  impl.exchange->rank(), count, after);
  }
}

void check_exchange_size(const MpiExchange& exchange, std::int64_t largest_batch) {
  EMBEDKIT_EXPECTS(largest_batch <= INT_MAX / exchange.size(), Status::invalid_argument,
                   "a rank's batch of {} ids on {} ranks could exceed what one MPI exchange counts ({}); "
                   "split the batch",
                   largest_batch, exchange.size(), INT_MAX);
}

}  // namespace detail

bool ShardedEmbeddingTable::available() noexcept { return true; }

ShardedEmbeddingTable::ShardedEmbeddingTable(TableConfig config, RowSplit split, MpiComm comm, Context& context)
    : ShardedEmbeddingTable([&] { return std::pair(config, split); }, initial_shard, comm, context) {}

ShardedEmbeddingTable ShardedEmbeddingTable::from_json(std::string_view config_json, std::string_view split,
                                                       MpiComm comm, Context& context) {
  return ShardedEmbeddingTable([&] { return std::pair(TableConfig::from_json(config_json), parse_row_split(split)); },
                               initial_shard, comm, context);
}

ShardedEmbeddingTable::ShardedEmbeddingTable(const ConfigSource& source, const ShardSource& make_shard, MpiComm comm,
                                             Context& context)
    : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  impl.exchange = std::make_unique<detail::MpiExchange>(communicator(comm));
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::CallScope call(exchange);
  TableConfig config;
  RowSplit split = RowSplit::contiguous;
  const bool lacks_seed = exchange.agree([&]() -> std::int64_t {
    std::tie(config, split) = source();
    config.validate();
    EMBEDKIT_EXPECTS(config.optimizer.kind != OptimizerKind::custom, Status::unsupported,
                     "sharded table '{}': a custom (callback) optimizer cannot be "
                     "sharded; use a built-in one",
                     config.name);
    EMBEDKIT_EXPECTS(config.output_dim <= INT_MAX, Status::unsupported,
                     "sharded table '{}': output_dim {} is more floats than one MPI "
                     "row type holds ({})",
                     config.name, config.output_dim, INT_MAX);
    impl.layout.emplace(config.input_dim, exchange.size(), split);
    return config.seed ? 0 : 1;
  }) != 0;
  // Rank 0's seed (drawn when it has none) for the ranks without one; a rank with its own keeps it,
  // and the config check below says so when it differs.
  if (lacks_seed) {
    const std::uint64_t drawn = exchange.rank() == 0 && !config.seed ? detail::draw_seed() : 0;
    const std::uint64_t seed = exchange.broadcast(exchange.rank() == 0 ? config.seed.value_or(drawn) : 0);
    if (!config.seed) config.seed = seed;
  }
  check_same_config(exchange, config, split);
  exchange.agree([&]() -> std::int64_t {
    impl.shard.emplace(make_shard(detail::shard_config(config, *impl.layout, exchange.rank()),
                                  impl.layout->shard(exchange.rank()), config, context));
    return 0;
  });
  exchange.set_row_width(config.output_dim);
  impl.config = std::move(config);
  detail::logger().info("sharded table '{}': rank {} of {} holds {} rows ({} split) on {}", impl.config.name,
                        exchange.rank(), exchange.size(), impl.shard->input_dim(), to_string(split),
                        impl.shard->placement().device_name());
}

ShardedEmbeddingTable::~ShardedEmbeddingTable() = default;
ShardedEmbeddingTable::ShardedEmbeddingTable(ShardedEmbeddingTable&&) noexcept = default;
ShardedEmbeddingTable& ShardedEmbeddingTable::operator=(ShardedEmbeddingTable&&) noexcept = default;

const TableConfig& ShardedEmbeddingTable::config() const noexcept { return impl_->config; }
std::int64_t ShardedEmbeddingTable::input_dim() const noexcept { return impl_->config.input_dim; }
std::int64_t ShardedEmbeddingTable::output_dim() const noexcept { return impl_->config.output_dim; }
RowSplit ShardedEmbeddingTable::split() const noexcept { return impl_->layout->split(); }
int ShardedEmbeddingTable::rank() const noexcept { return impl_->exchange->rank(); }
int ShardedEmbeddingTable::world_size() const noexcept { return impl_->exchange->size(); }
const EmbeddingTable& ShardedEmbeddingTable::shard() const noexcept { return *impl_->shard; }
std::int64_t ShardedEmbeddingTable::step() const noexcept { return impl_->shard->step(); }
std::int64_t ShardedEmbeddingTable::out_of_range_count() const noexcept { return impl_->out_of_range_count.load(); }
ExchangeStats ShardedEmbeddingTable::last_exchange() const noexcept { return impl_->exchange->stats(); }

ShardRows ShardedEmbeddingTable::rows(int rank) const {
  EMBEDKIT_EXPECTS(rank >= 0 && rank < world_size(), Status::invalid_argument, "rank {} is not in [0, {})", rank,
                   world_size());
  return impl_->layout->shard(rank);
}

void ShardedEmbeddingTable::set_learning_rate(double learning_rate) {
  Impl& impl = *impl_;
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::CallScope call(exchange);
  exchange.agree([&]() -> std::int64_t {
    OptimizerConfig changed = impl.config.optimizer;
    changed.learning_rate = learning_rate;
    changed.validate();
    return 0;
  });
  const std::vector<std::uint64_t> rates = exchange.gather(std::bit_cast<std::uint64_t>(learning_rate));
  for (std::size_t r = 1; r < rates.size(); ++r) {
    EMBEDKIT_EXPECTS(rates[r] == rates[0], Status::invalid_argument,
                     "rank {} sets learning rate {} but rank 0 sets {}: every rank must pass the same", r,
                     std::bit_cast<double>(rates[r]), std::bit_cast<double>(rates[0]));
  }
  impl.shard->set_learning_rate(learning_rate);  // checked above, so it fails on no rank
  impl.config.optimizer.learning_rate = learning_rate;
}

Array<float> ShardedEmbeddingTable::get_weights() const {
  const Impl& impl = *impl_;
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::CallScope call(exchange);
  EMBEDKIT_EXPECTS(impl.config.input_dim <= INT_MAX, Status::unsupported,
                   "get_weights gathers at most {} rows, the table has {}", INT_MAX, impl.config.input_dim);
  std::vector<float> local;
  exchange.agree([&]() -> std::int64_t {
    local = impl.shard->get_weights().values;
    return 0;
  });
  std::vector<int> counts(static_cast<std::size_t>(exchange.size()));
  for (int r = 0; r < exchange.size(); ++r)
    counts[static_cast<std::size_t>(r)] = static_cast<int>(impl.layout->shard(r).count);
  const std::vector<float> gathered = exchange.gather_rows(local, counts);
  const auto dim = static_cast<std::size_t>(impl.config.output_dim);
  Array<float> out;
  out.shape = {impl.config.input_dim, impl.config.output_dim};
  out.values = Buffer<float>::uninitialized(gathered.size());
  std::size_t next = 0;  // gathered rows come rank by rank, each shard's in local order
  for (int r = 0; r < exchange.size(); ++r) {
    const ShardRows rows = impl.layout->shard(r);
    for (std::int64_t k = 0; k < rows.count; ++k, ++next) {
      const auto global = static_cast<std::size_t>(rows.first + k * rows.stride);
      std::memcpy(out.values.data() + global * dim, gathered.data() + next * dim, dim * sizeof(float));
    }
  }
  return out;
}

void ShardedEmbeddingTable::fail_call(const Error& error) const {
  detail::MpiExchange& exchange = *impl_->exchange;
  const detail::CallScope call(exchange);
  // Every collective call starts by agreeing on its inputs: failing that step fails the call.
  exchange.agree([&]() -> std::int64_t { throw error; });
  throw Error(Status::internal, "fail_call: the agreement did not fail");
}

}  // namespace embedkit
