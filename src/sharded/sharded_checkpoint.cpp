// ShardedEmbeddingTable checkpoints: each rank's rows saved as an ordinary table checkpoint, and a
// manifest naming the world size and rows, so that a load on any world size can re-shard.
#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>

#include "../checkpoint_names.hpp"
#include "../config_json.hpp"
#include "../io/files.hpp"
#include "../json_document.hpp"
#include "../json_fields.hpp"
#include "../step_limit.hpp"
#include "../optimizer_state.hpp"
#include "../table_access.hpp"
#include "sharded_impl.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <random>

namespace embedkit {
namespace {

constexpr const char* kManifest = "sharded.json";
constexpr const char* kFormat = "embedkit-sharded-checkpoint";
constexpr int kFormatVersion = 1;

std::string join(std::string_view directory, std::string_view name) { return fmt::format("{}/{}", directory, name); }

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
    if (json.value("format_version", 0) != kFormatVersion) {
      bad_manifest(directory, fmt::format("format version {} is not supported (this embedkit reads {})",
                                          json.value("format_version", 0), kFormatVersion));
    }
    manifest.config = detail::config_from_json(json.at("config"));
    manifest.split = parse_row_split(json.at("split").get<std::string>());
    manifest.world = json.at("world_size").get<int>();
    // Typed and in range, as a table checkpoint's step: no later train step may overflow it.
    manifest.step = detail::integer(json.at("step"), "step");
    if (manifest.step < 0 || manifest.step > detail::kMaxStep) {
      bad_manifest(directory, fmt::format("step {} is not in [0, {}]", manifest.step, detail::kMaxStep));
    }
    const detail::RowLayout layout(manifest.config.input_dim, manifest.world, manifest.split);
    const auto& shards = json.at("shards");
    if (static_cast<int>(shards.size()) != manifest.world) {
      bad_manifest(directory, fmt::format("names {} shards for a world of {}", shards.size(), manifest.world));
    }
    for (int r = 0; r < manifest.world; ++r) {
      const auto& shard = shards.at(static_cast<std::size_t>(r));
      const ShardRows rows = layout.shard(r);
      if (shard.at("rank").get<int>() != r || shard.at("first").get<std::int64_t>() != rows.first ||
          shard.at("stride").get<std::int64_t>() != rows.stride || shard.at("rows").get<std::int64_t>() != rows.count) {
        bad_manifest(directory, fmt::format("shard {} does not hold the rows a {} split of {} rows over {} ranks gives",
                                            r, to_string(manifest.split), manifest.config.input_dim, manifest.world));
      }
      const std::string name = shard.at("directory").get<std::string>();
      if (name != shard_directory(r, manifest.world)) bad_manifest(directory, fmt::format("unexpected shard directory '{}'", name));
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
    if (source.step() != manifest.step || source.input_dim() != saved.shard(owner).count || source.output_dim() != dim) {
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
  return detail::TableAccess::restore(std::move(shard_config), context, weights, slots, manifest.step);
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
    std::random_device random;
    const std::string temporary = fmt::format("{}.tmp-{:08x}", kManifest, random());
    try {
      detail::write_file_durably(join(dir, temporary), manifest.dump(2) + "\n");
      detail::replace_file(join(dir, temporary), join(dir, kManifest));
    } catch (...) {
      std::remove(join(dir, temporary).c_str());  // a failed save leaves no partial file
      throw;
    }
    detail::sync_directory(dir);
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
