// ShardedEmbeddingTable in a build without MPI: the entry points exist, and the constructors say
// why they cannot make a table. No table can exist in such a build, so the other methods are never
// reached on an object; they report the same.
#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>

namespace embedkit {
namespace {

[[noreturn]] void built_without_mpi() {
  throw Error(Status::unsupported, "sharded tables are not available: embedkit was built without MPI");
}

}  // namespace

struct ShardedEmbeddingTable::Impl {};

bool ShardedEmbeddingTable::available() noexcept { return false; }

ShardedEmbeddingTable::ShardedEmbeddingTable(TableConfig, RowSplit, MpiComm, Context&) { built_without_mpi(); }
ShardedEmbeddingTable ShardedEmbeddingTable::from_json(std::string_view, std::string_view, MpiComm, Context&) {
  built_without_mpi();
}
ShardedEmbeddingTable::ShardedEmbeddingTable(const ConfigSource&, const ShardSource&, MpiComm, Context&) {
  built_without_mpi();
}
ShardedEmbeddingTable ShardedEmbeddingTable::load(std::string_view, MpiComm, Context&) { built_without_mpi(); }
ShardedEmbeddingTable::~ShardedEmbeddingTable() = default;
ShardedEmbeddingTable::ShardedEmbeddingTable(ShardedEmbeddingTable&&) noexcept = default;
ShardedEmbeddingTable& ShardedEmbeddingTable::operator=(ShardedEmbeddingTable&&) noexcept = default;

const TableConfig& ShardedEmbeddingTable::config() const noexcept { built_without_mpi(); }
std::int64_t ShardedEmbeddingTable::input_dim() const noexcept { built_without_mpi(); }
std::int64_t ShardedEmbeddingTable::output_dim() const noexcept { built_without_mpi(); }
RowSplit ShardedEmbeddingTable::split() const noexcept { built_without_mpi(); }
int ShardedEmbeddingTable::rank() const noexcept { built_without_mpi(); }
int ShardedEmbeddingTable::world_size() const noexcept { built_without_mpi(); }
ShardRows ShardedEmbeddingTable::rows(int) const { built_without_mpi(); }
const EmbeddingTable& ShardedEmbeddingTable::shard() const noexcept { built_without_mpi(); }
std::int64_t ShardedEmbeddingTable::step() const noexcept { built_without_mpi(); }
std::int64_t ShardedEmbeddingTable::out_of_range_count() const noexcept { built_without_mpi(); }
ExchangeStats ShardedEmbeddingTable::last_exchange() const noexcept { built_without_mpi(); }
Array<float> ShardedEmbeddingTable::lookup(const IndexTensor&) const { built_without_mpi(); }
void ShardedEmbeddingTable::lookup(const IndexTensor&, std::span<float>) const { built_without_mpi(); }
Array<float> ShardedEmbeddingTable::lookup_pooled(const IndexTensor&, std::span<const std::int64_t>, PoolingMode,
                                                  std::span<const float>) const {
  built_without_mpi();
}
void ShardedEmbeddingTable::lookup_pooled(const IndexTensor&, std::span<const std::int64_t>, PoolingMode,
                                          std::span<const float>, std::span<float>) const {
  built_without_mpi();
}
void ShardedEmbeddingTable::train_step(const IndexTensor&, std::span<const float>) { built_without_mpi(); }
void ShardedEmbeddingTable::train_step_pooled(const IndexTensor&, std::span<const std::int64_t>, PoolingMode,
                                              std::span<const float>, std::span<const float>) {
  built_without_mpi();
}
void ShardedEmbeddingTable::set_learning_rate(double) { built_without_mpi(); }
Array<float> ShardedEmbeddingTable::get_weights() const { built_without_mpi(); }
void ShardedEmbeddingTable::save(std::string_view) const { built_without_mpi(); }
void ShardedEmbeddingTable::fail_call(const Error&) const { built_without_mpi(); }

}  // namespace embedkit
