// ShardedEmbeddingTable checkpoints: each rank's rows saved as an ordinary table checkpoint, and a
// manifest naming the world size and rows, so that a load on any world size can re-shard.
#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>

#include "config/config_json.hpp"
#include "config/json_document.hpp"
#include "config/json_fields.hpp"
#include "config/optimizer_state.hpp"
#include "core/log.hpp"
#include "core/step_limit.hpp"
#include "io/checkpoint_names.hpp"
#include "io/files.hpp"
#include "sharded/sharded_impl.hpp"
#include "table/table_access.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <limits>
#include <map>
#include <random>

namespace embedkit {
namespace {

constexpr const char* kManifest = "sharded.json";
constexpr const char* kFormat = "embedkit-sharded-checkpoint";
constexpr int kFormatVersion = 1;

constexpr std::string_view kTemporaryPrefix = "sharded.json.tmp-";  // then 8 hex digits

std::string join(std::string_view directory, std::string_view name) { return fmt::format("{}/{}", directory, name); }

// Deletes the sharded.json.tmp-XXXXXXXX files in `directory` that saves killed before their rename
// left, which no later save would otherwise remove; only names of that form, never a foreign file.
// One that cannot be deleted is only a warning: the save is in.
void remove_killed_saves_temporaries(const std::string& directory) {
  DIR* listing = ::opendir(directory.c_str());
  if (listing == nullptr) return;
  std::vector<std::string> doomed;
  while (const dirent* entry = ::readdir(listing)) {
    const std::string_view name = entry->d_name;
    if (name.size() == kTemporaryPrefix.size() + 8 && name.substr(0, kTemporaryPrefix.size()) == kTemporaryPrefix &&
        name.find_first_not_of("0123456789abcdef", kTemporaryPrefix.size()) == std::string_view::npos) {
      doomed.emplace_back(name);
    }
  }
  ::closedir(listing);
  for (const std::string& name : doomed) {
    if (std::remove(join(directory, name).c_str()) != 0 && errno != ENOENT) {
      detail::logger().warn("sharded checkpoint {}: could not delete the leftover {}", directory, name);
    }
  }
}

std::string shard_directory(int rank, int world) { return fmt::format("rank{}of{}", rank, world); }

[[noreturn]] void bad_manifest(const std::string& directory, const std::string& why) {
  throw Error(Status::io_error, fmt::format("{}: {}", join(directory, kManifest), why));
}

// What sharded.json says.
struct ShardedManifest {
  TableConfig config;
  RowSplit split = RowSplit::contiguous;
  int world = 1;
  std::int64_t step = 0;
  std::vector<std::string> shard_directories;  // by the rank that saved it
};

ShardedManifest read_manifest(const std::string& directory) {
  ShardedManifest manifest;
  try {
    const nlohmann::json json = detail::parse_json_document(
        detail::read_file(join(directory, kManifest), detail::kMaxManifestBytes), kManifest, Status::io_error);
    if (json.value("format", "") != kFormat) bad_manifest(directory, "not an embedkit sharded checkpoint manifest");
    // Typed reads: get<int>() would truncate 1.9 to 1 and wrap 4294967297 to 1.
    const nlohmann::json version = json.value("format_version", nlohmann::json());
    if (!version.is_number_integer() || version != kFormatVersion) {
      bad_manifest(directory, fmt::format("format version {} is not supported (this embedkit reads {})",
                                          detail::json_repr(version), kFormatVersion));
    }
    manifest.config = detail::config_from_json(json.at("config"));
    manifest.split = parse_row_split(json.at("split").get<std::string>());
    const std::int64_t world = detail::positive_integer(json.at("world_size"), "world_size");
    if (world > std::numeric_limits<int>::max()) {
      bad_manifest(directory, fmt::format("world_size {} is more than an MPI job has ranks", world));
    }
    manifest.world = static_cast<int>(world);
    // Typed and in range, as a table checkpoint's step: no later train step may overflow it.
    manifest.step = detail::checked_step(detail::integer(json.at("step"), "step"));
    const detail::RowLayout layout(manifest.config.input_dim, manifest.world, manifest.split);
    const auto& shards = json.at("shards");
    if (static_cast<int>(shards.size()) != manifest.world) {
      bad_manifest(directory, fmt::format("names {} shards for a world of {}", shards.size(), manifest.world));
    }
    for (int r = 0; r < manifest.world; ++r) {
      const auto& shard = shards.at(static_cast<std::size_t>(r));
      const ShardRows rows = layout.shard(r);
      // Typed: a float or a wrapped integer that happened to convert to the right value is not it.
      if (detail::integer(shard.at("rank"), "rank") != r || detail::integer(shard.at("first"), "first") != rows.first ||
          detail::integer(shard.at("stride"), "stride") != rows.stride ||
          detail::integer(shard.at("rows"), "rows") != rows.count) {
        bad_manifest(directory, fmt::format("shard {} does not hold the rows a {} split of {} rows over {} ranks gives",
                                            r, to_string(manifest.split), manifest.config.input_dim, manifest.world));
      }
      const std::string name = shard.at("directory").get<std::string>();
      if (name != shard_directory(r, manifest.world))
        bad_manifest(directory, fmt::format("unexpected shard directory '{}'", name));
      manifest.shard_directories.push_back(name);
    }
  } catch (const nlohmann::json::exception& e) {
    bad_manifest(directory, fmt::format("malformed: {}", e.what()));
  } catch (const Error& e) {
    if (e.status() == Status::io_error) throw;
    bad_manifest(directory, e.what());
  }
  return manifest;
}

// This rank's shard of a re-sharded load: each of its rows read from the saved shard that held it.
EmbeddingTable resharded(const std::string& directory, const ShardedManifest& manifest, TableConfig shard_config,
                         const ShardRows& rows, Context& context) {
  const detail::RowLayout saved(manifest.config.input_dim, manifest.world, manifest.split);
  const std::int64_t dim = manifest.config.output_dim;
  const std::vector<detail::SlotSpec> specs = detail::slot_specs(manifest.config.optimizer, dim);
  std::vector<float> weights(static_cast<std::size_t>(rows.count * dim));
  std::vector<std::vector<float>> slots;
  for (const detail::SlotSpec& spec : specs) slots.emplace_back(static_cast<std::size_t>(rows.count * spec.width));
  // Local rows grouped by the saved shard holding them, so each saved shard is read once.
  std::map<int, std::vector<std::int64_t>> wanted;
  for (std::int64_t k = 0; k < rows.count; ++k) wanted[saved.owner(rows.first + k * rows.stride)].push_back(k);
  for (const auto& [owner, locals] : wanted) {
    const std::string path = join(directory, manifest.shard_directories[static_cast<std::size_t>(owner)]);
    const EmbeddingTable source = EmbeddingTable::load(path, context);  // checksums checked
    if (source.step() != manifest.step || source.input_dim() != saved.shard(owner).count ||
        source.output_dim() != dim) {
      throw Error(Status::io_error,
                  fmt::format("{}: holds step {} and {} rows, but {} says step {} and {} rows: shards of different "
                              "saves (a save that did not finish?)",
                              path, source.step(), source.input_dim(), kManifest, manifest.step,
                              saved.shard(owner).count));
    }
    const std::vector<float> source_weights = source.get_weights().values;
    std::vector<std::vector<float>> source_slots;
    for (const detail::SlotSpec& spec : specs) source_slots.push_back(source.optimizer_state(spec.name).values);
    for (const std::int64_t k : locals) {
      const std::int64_t from = saved.local(rows.first + k * rows.stride);
      std::copy_n(source_weights.begin() + from * dim, dim, weights.begin() + k * dim);
      for (std::size_t s = 0; s < specs.size(); ++s) {
        const std::int64_t width = specs[s].width;
        std::copy_n(source_slots[s].begin() + from * width, width, slots[s].begin() + k * width);
      }
    }
  }
  return detail::TableAccess::restore(std::move(shard_config), context, weights, slots, manifest.step,
                                      detail::RowSlice{manifest.config.input_dim, rows.first, rows.stride});
}

}  // namespace

void ShardedEmbeddingTable::save(std::string_view directory) const {
  const Impl& impl = *impl_;
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::CallScope call(exchange);
  const std::string dir(directory);
  const int world = exchange.size();
  exchange.agree([&]() -> std::int64_t {
    detail::check_checkpoint_directory(dir);  // inside: a rank given "" fails every rank's call
    detail::ensure_directory(dir);
    impl.shard->save(join(dir, shard_directory(exchange.rank(), world)));
    return 0;
  });
  // Every shard is in: rank 0 names them. Until the rename, a reader sees the previous manifest.
  exchange.agree([&]() -> std::int64_t {
    if (exchange.rank() != 0) return 0;
    nlohmann::json shards = nlohmann::json::array();
    for (int r = 0; r < world; ++r) {
      const ShardRows rows = impl.layout->shard(r);
      shards.push_back({{"rank", r},
                        {"directory", shard_directory(r, world)},
                        {"first", rows.first},
                        {"stride", rows.stride},
                        {"rows", rows.count}});
    }
    const nlohmann::json manifest = {{"format", kFormat},
                                     {"format_version", kFormatVersion},
                                     {"config", detail::config_to_json(impl.config)},
                                     {"split", to_string(impl.layout->split())},
                                     {"world_size", world},
                                     {"step", impl.shard->step()},
                                     {"shards", shards}};
    // Held across the write and the cleanup, so a concurrent save's temporary is never taken for a leftover.
    const detail::DirectoryLock one_save_at_a_time(dir);
    std::random_device random;
    const std::string temporary = fmt::format("{}{:08x}", kTemporaryPrefix, random());
    try {
      detail::write_file_durably(join(dir, temporary), manifest.dump(2) + "\n");
      detail::replace_file(join(dir, temporary), join(dir, kManifest));
    } catch (...) {
      std::remove(join(dir, temporary).c_str());  // a failed save leaves no partial file
      throw;
    }
    detail::sync_directory(dir);
    remove_killed_saves_temporaries(dir);
    return 0;
  });
}

ShardedEmbeddingTable ShardedEmbeddingTable::load(std::string_view directory, MpiComm comm, Context& context) {
  const std::string dir(directory);
  ShardedManifest manifest;
  return ShardedEmbeddingTable(
      [&] {
        detail::check_checkpoint_directory(dir);  // inside: a rank given "" fails every rank's load
        manifest = read_manifest(dir);
        return std::pair(manifest.config, manifest.split);
      },
      [&](TableConfig shard_config, const ShardRows& rows, const TableConfig&, Context& on) {
        return resharded(dir, manifest, std::move(shard_config), rows, on);
      },
      comm, context);
}

}  // namespace embedkit
