// TableCollection: many tables, one batch in TorchRec's KeyedJaggedTensor layout per call.
#include <embedkit/collection.hpp>
#include <embedkit/detail/pooling_math.hpp>
#include <embedkit/status.hpp>

#include "backend/backends.hpp"
#include "config/config_json.hpp"
#include "config/json_document.hpp"
#include "core/expects.hpp"
#include "core/ids.hpp"
#include "core/memory_overlap.hpp"
#include "core/shape.hpp"
#include "io/files.hpp"
#include "table/table_access.hpp"
#include "table/table_impl.hpp"
#include "table/table_steps.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

namespace embedkit {

void CollectionConfig::validate() const {
  EMBEDKIT_EXPECTS(!tables.empty(), Status::invalid_argument, "a collection needs at least one table");
  std::map<std::string, std::size_t, std::less<>> table_names;
  std::map<std::string, std::size_t, std::less<>> features;
  for (std::size_t t = 0; t < tables.size(); ++t) {
    const CollectionTable& table = tables[t];
    const std::string& name = table.config.name;
    try {
      table.config.validate();
    } catch (const Error& e) {
      throw Error(e.status(), fmt::format("table '{}' (tables[{}]): {}", name, t, e.what()));
    }
    const auto [named, fresh] = table_names.emplace(name, t);
    EMBEDKIT_EXPECTS(fresh, Status::invalid_argument, "tables[{}] and tables[{}] are both named '{}'", named->second, t,
                     name);
    EMBEDKIT_EXPECTS(table.config.optimizer.kind != OptimizerKind::custom, Status::invalid_argument,
                     "table '{}': a collection's tables take built-in optimizers only, not a custom one", name);
    EMBEDKIT_EXPECTS(!table.feature_names.empty(), Status::invalid_argument, "table '{}' has no feature_names", name);
    for (const std::string& feature : table.feature_names) {
      EMBEDKIT_EXPECTS(!feature.empty(), Status::invalid_argument, "table '{}' has an empty feature name", name);
      const auto [seen, first] = features.emplace(feature, t);
      EMBEDKIT_EXPECTS(first, Status::invalid_argument, "feature '{}' is served by table '{}' and again by table '{}'",
                       feature, tables[seen->second].config.name, name);
    }
  }
}

CollectionConfig CollectionConfig::from_json(std::string_view json) {
  const nlohmann::json document = detail::parse_json_document(json, "collection config", Status::invalid_argument);
  EMBEDKIT_EXPECTS(document.is_object() && document.contains("tables") && document["tables"].is_array(),
                   Status::invalid_argument, "a collection config is an object with a 'tables' array");
  for (const auto& [key, value] : document.items()) {
    EMBEDKIT_EXPECTS(key == "tables", Status::invalid_argument, "unknown collection config key '{}'", key);
  }
  CollectionConfig config;
  const nlohmann::json& tables = document["tables"];
  for (std::size_t t = 0; t < tables.size(); ++t) {
    const nlohmann::json& entry = tables[t];
    EMBEDKIT_EXPECTS(entry.is_object(), Status::invalid_argument, "tables[{}] is not an object", t);
    nlohmann::json table_json = entry;
    CollectionTable table;
    try {
      if (table_json.contains("pooling")) {
        EMBEDKIT_EXPECTS(table_json["pooling"].is_string(), Status::invalid_argument, "pooling must be a string");
        table.pooling = parse_pooling_mode(table_json["pooling"].get<std::string>());
        table_json.erase("pooling");
      }
      std::vector<std::string> feature_names;
      if (table_json.contains("feature_names")) {
        const nlohmann::json& names = table_json["feature_names"];
        EMBEDKIT_EXPECTS(names.is_array(), Status::invalid_argument, "feature_names must be a list of strings");
        for (const nlohmann::json& name : names) {
          EMBEDKIT_EXPECTS(name.is_string(), Status::invalid_argument, "feature_names must be a list of strings");
          feature_names.push_back(name.get<std::string>());
        }
        table_json.erase("feature_names");
      }
      table.config = detail::config_from_json(table_json);
      table.feature_names = feature_names.empty() && !entry.contains("feature_names")
                                ? std::vector<std::string>{table.config.name}
                                : std::move(feature_names);
    } catch (const Error& e) {
      throw Error(e.status(), fmt::format("tables[{}]: {}", t, e.what()));
    }
    config.tables.push_back(std::move(table));
  }
  config.validate();
  return config;
}

std::string CollectionConfig::to_json() const {
  nlohmann::json tables_json = nlohmann::json::array();
  for (const CollectionTable& table : tables) {
    nlohmann::json entry = detail::config_to_json(table.config);
    entry["feature_names"] = table.feature_names;
    entry["pooling"] = to_string(table.pooling);
    tables_json.push_back(std::move(entry));
  }
  return nlohmann::json{{"tables", std::move(tables_json)}}.dump();
}

namespace {

struct Feature {
  std::string name;
  std::size_t table = 0;
  std::int64_t dim = 0;
  std::int64_t column = 0;  // its first column in a pooled lookup's output
};

}  // namespace

struct TableCollection::Impl {
  CollectionConfig config;
  std::vector<EmbeddingTable> tables;
  std::vector<Feature> features;  // output order
  std::unordered_map<std::string, std::size_t> feature_index;
  std::int64_t width = 0;
};

namespace {

using CollectionImpl = TableCollection::Impl;

// A batch checked against the collection: where each served feature's ids are, its bags as CSR
// offsets from 0, and the ids each table reads as zeros under zero_fill.
struct Resolved {
  std::int64_t batch = 0;
  std::vector<std::int64_t> begin;         // per feature: its first position in values
  std::vector<std::int64_t> count;         // per feature: its ids
  std::span<std::int64_t> offsets;         // per feature: batch + 1 offsets from 0, feature after feature (scratch)
  std::vector<std::size_t> key_of;         // per feature: its key's index
  std::vector<detail::ZeroFilled> filled;  // per feature

  const std::int64_t* feature_offsets(std::size_t f) const {
    return offsets.data() + static_cast<std::ptrdiff_t>(f) * (batch + 1);
  }
};

// The sample holding position p of a feature with CSR `offsets` over `batch` samples.
std::int64_t sample_of(const std::int64_t* offsets, std::int64_t batch, std::int64_t p) {
  return std::upper_bound(offsets, offsets + batch + 1, p) - offsets - 1;
}

// `count` int64s of the calling thread's scratch number `which`, kept between calls: a call's
// offsets are as long as its batch, and fresh pages for them on every call cost page faults.
std::span<std::int64_t> offsets_scratch(int which, std::size_t count) {
  thread_local std::vector<std::int64_t> scratch[2];
  if (scratch[which].size() < count) scratch[which].resize(count);
  return {scratch[which].data(), count};
}

// Global per-key-and-sample offsets (keys × batch + 1) from the batch's lengths (into scratch) or
// its offsets (as they are), checked.
std::span<const std::int64_t> global_offsets(const KeyedJaggedBatch& batch, std::int64_t keys) {
  const std::int64_t values = batch.values.size();
  const auto key_name = [&](std::int64_t slot, std::int64_t samples) {
    return batch.keys[static_cast<std::size_t>(slot / samples)];
  };
  if (batch.offsets.empty()) {  // lengths, empty for a batch of no samples
    const auto slots = static_cast<std::int64_t>(batch.lengths.size());
    EMBEDKIT_EXPECTS(slots % keys == 0, Status::shape_mismatch,
                     "lengths hold {} entries, not a multiple of the {} keys (keys × batch size)", slots, keys);
    const std::int64_t samples = slots / keys;
    const std::span<std::int64_t> offsets = offsets_scratch(0, static_cast<std::size_t>(slots) + 1);
    offsets[0] = 0;
    for (std::int64_t s = 0; s < slots; ++s) {
      const std::int64_t length = batch.lengths[s];
      EMBEDKIT_EXPECTS(length >= 0, Status::invalid_argument, "feature '{}' sample {}: length {} is negative",
                       key_name(s, samples), s % samples, length);
      EMBEDKIT_EXPECTS(length <= values - offsets[s], Status::shape_mismatch,
                       "feature '{}' sample {}: length {} runs past the {} values (lengths must sum to the values)",
                       key_name(s, samples), s % samples, length, values);
      offsets[s + 1] = offsets[s] + length;
    }
    EMBEDKIT_EXPECTS(offsets.back() == values, Status::shape_mismatch, "lengths sum to {}, but values hold {} ids",
                     offsets.back(), values);
    return offsets;
  }
  const auto slots = static_cast<std::int64_t>(batch.offsets.size()) - 1;
  EMBEDKIT_EXPECTS(slots % keys == 0, Status::shape_mismatch,
                   "offsets hold {} entries, not 1 + a multiple of the {} keys (keys × batch size + 1)", slots + 1,
                   keys);
  const std::int64_t samples = slots / keys;
  EMBEDKIT_EXPECTS(batch.offsets[0] == 0, Status::invalid_argument, "offsets[0] = {} is not 0", batch.offsets[0]);
  for (std::int64_t s = 0; s < slots; ++s) {
    EMBEDKIT_EXPECTS(batch.offsets[s + 1] >= batch.offsets[s], Status::invalid_argument,
                     "feature '{}' sample {}: offsets[{}] = {} is below offsets[{}] = {}", key_name(s, samples),
                     s % samples, s + 1, batch.offsets[s + 1], s, batch.offsets[s]);
  }
  EMBEDKIT_EXPECTS(batch.offsets[slots] == values, Status::shape_mismatch, "offsets end at {}, but values hold {} ids",
                   batch.offsets[slots], values);
  if (!batch.lengths.empty()) {
    EMBEDKIT_EXPECTS(batch.lengths.size() == static_cast<std::size_t>(slots), Status::shape_mismatch,
                     "lengths hold {} entries and offsets {}: with both, offsets hold one more", batch.lengths.size(),
                     slots + 1);
    for (std::int64_t s = 0; s < slots; ++s) {
      EMBEDKIT_EXPECTS(batch.lengths[s] == batch.offsets[s + 1] - batch.offsets[s], Status::invalid_argument,
                       "feature '{}' sample {}: length {} disagrees with offsets ({} ids)", key_name(s, samples),
                       s % samples, batch.lengths[s], batch.offsets[s + 1] - batch.offsets[s]);
    }
  }
  return batch.offsets;
}

// Everything about `batch` a call checks before it touches a table; `all_keys`: every key must be
// a feature of the collection (a plain lookup writes a row for every value).
Resolved resolve(const CollectionImpl& impl, const KeyedJaggedBatch& batch, bool all_keys) {
  const auto keys = static_cast<std::int64_t>(batch.keys.size());
  EMBEDKIT_EXPECTS(keys > 0, Status::invalid_argument, "the batch has no keys");
  EMBEDKIT_EXPECTS(batch.values.shape().size() == 1, Status::shape_mismatch, "values must be 1-D, got shape {}",
                   detail::format_shape(batch.values.shape()));
  EMBEDKIT_EXPECTS(batch.weights.empty() || batch.weights.size() == static_cast<std::size_t>(batch.values.size()),
                   Status::shape_mismatch, "weights hold {} values, values {} ids: one weight per id",
                   batch.weights.size(), batch.values.size());
  std::unordered_map<std::string_view, std::size_t> key_index;
  for (std::size_t k = 0; k < batch.keys.size(); ++k) {
    const auto [seen, fresh] = key_index.emplace(batch.keys[k], k);
    EMBEDKIT_EXPECTS(fresh, Status::invalid_argument, "key '{}' is keys[{}] and keys[{}]", batch.keys[k], seen->second,
                     k);
    EMBEDKIT_EXPECTS(!all_keys || impl.feature_index.contains(batch.keys[k]), Status::invalid_argument,
                     "key '{}' (keys[{}]) is not a feature of the collection", batch.keys[k], k);
  }
  const std::span<const std::int64_t> offsets = global_offsets(batch, keys);
  Resolved resolved;
  resolved.batch = (static_cast<std::int64_t>(offsets.size()) - 1) / keys;
  const std::int64_t samples = resolved.batch;
  const std::size_t features = impl.features.size();
  resolved.begin.resize(features);
  resolved.count.resize(features);
  resolved.key_of.resize(features);
  resolved.filled.resize(features);
  resolved.offsets = offsets_scratch(1, features * static_cast<std::size_t>(samples + 1));
  for (std::size_t f = 0; f < features; ++f) {
    const Feature& feature = impl.features[f];
    const auto key = key_index.find(feature.name);
    EMBEDKIT_EXPECTS(key != key_index.end(), Status::invalid_argument,
                     "feature '{}' (table '{}') is not among the batch's keys", feature.name,
                     impl.tables[feature.table].config().name);
    const std::size_t k = key->second;
    const std::int64_t* global = offsets.data() + static_cast<std::ptrdiff_t>(k) * samples;
    const std::int64_t begin = global[0];
    std::int64_t* local = resolved.offsets.data() + static_cast<std::ptrdiff_t>(f) * (samples + 1);
    for (std::int64_t s = 0; s <= samples; ++s) local[s] = global[s] - begin;
    resolved.key_of[f] = k;
    resolved.begin[f] = begin;
    resolved.count[f] = local[samples];
    const EmbeddingTable::Impl& table = detail::TableAccess::impl(impl.tables[feature.table]);
    const detail::IdCheck scan = detail::with_ids(batch.values, [&](const auto* ids) {
      return detail::host_ops().scan_ids(detail::host_ids(ids + begin, resolved.count[f]), table.config.input_dim);
    });
    if (scan.out_of_range == 0) continue;
    const std::int64_t sample = sample_of(local, samples, scan.first_position);
    std::string message =
        fmt::format("feature '{}' sample {}: indices[{}] = {} is not in [0, {})", feature.name, sample,
                    scan.first_position - local[sample], scan.first_id, table.config.input_dim);
    EMBEDKIT_EXPECTS(table.config.bounds_check != BoundsCheck::error, Status::out_of_range, "{}", message);
    resolved.filled[f] = {scan.out_of_range, std::move(message)};
  }
  return resolved;
}

// The caller's input memory, named for overlap checks.
std::vector<detail::NamedBytes> input_memory(const KeyedJaggedBatch& batch) {
  return {{"values", batch.values.data(), detail::index_bytes(batch.values)},
          {"lengths", batch.lengths.data(), batch.lengths.size_bytes()},
          {"offsets", batch.offsets.data(), batch.offsets.size_bytes()},
          {"weights", batch.weights.data(), batch.weights.size_bytes()}};
}

// Outputs must share no byte with the inputs, each other, or any table's memory.
void check_outputs(const CollectionImpl& impl, std::span<const detail::NamedBytes> outputs,
                   std::vector<detail::NamedBytes> inputs) {
  for (const EmbeddingTable& table : impl.tables) {
    for (detail::NamedBytes& owned : detail::TableAccess::memory(table)) {
      owned.name = fmt::format("{} of table '{}'", owned.name, table.config().name);
      inputs.push_back(std::move(owned));
    }
  }
  detail::check_outputs_apart(outputs, inputs);
}

// Whether a table's pooled lookups can join the collection's one CPU region: its rows are float32
// host rows of the CPU backend and a lookup only reads them (no max_norm).
bool joins_cpu_region(const EmbeddingTable::Impl& table) {
  return table.backend == &detail::cpu_backend() && table.view().weights.type == detail::StorageType::float32 &&
         !table.config.max_norm;
}

// An IndexTensor over `count` ids of `values` from `begin`.
IndexTensor id_slice(const IndexTensor& values, std::int64_t begin, std::int64_t count) {
  return detail::with_ids(values, [&](const auto* ids) { return IndexTensor(ids + begin, {count}); });
}

}  // namespace

namespace {

// The order a collection's tables are created in: the smallest first, so that when the context's
// device budget runs out it is the big tables that go to the CPU.
std::vector<std::size_t> creation_order(const CollectionConfig& config) {
  std::vector<std::size_t> order(config.tables.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto size_of = [&](std::size_t t) {
    return static_cast<double>(config.tables[t].config.input_dim) *
           static_cast<double>(config.tables[t].config.output_dim);
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return size_of(a) < size_of(b); });
  return order;
}

// Takes `made` (one table per config entry, in config order) into `impl`, with the features.
void adopt(TableCollection::Impl& impl, CollectionConfig config, std::vector<std::optional<EmbeddingTable>> made) {
  for (std::size_t t = 0; t < made.size(); ++t) {
    impl.tables.push_back(std::move(*made[t]));
    config.tables[t].config = impl.tables.back().config();  // with its seed
    for (const std::string& name : config.tables[t].feature_names) {
      impl.feature_index.emplace(name, impl.features.size());
      impl.features.push_back({name, t, config.tables[t].config.output_dim, impl.width});
      impl.width += config.tables[t].config.output_dim;
    }
  }
  impl.config = std::move(config);
}

}  // namespace

TableCollection::TableCollection(CollectionConfig config, Context& context) : impl_(std::make_unique<Impl>()) {
  config.validate();
  std::vector<std::optional<EmbeddingTable>> made(config.tables.size());
  for (const std::size_t t : creation_order(config)) made[t].emplace(config.tables[t].config, context);
  adopt(*impl_, std::move(config), std::move(made));
}

namespace {

constexpr std::string_view kCollectionManifest = "collection.json";
constexpr int kCollectionFormat = 1;

std::string table_folder(std::int64_t generation, std::size_t table) {
  return fmt::format("g{}-t{}", generation, table);
}

// The generation of the checkpoint in `directory`, 0 when there is none.
std::int64_t saved_generation(const std::string& directory) {
  const std::string path = directory + "/" + std::string(kCollectionManifest);
  if (!std::filesystem::exists(path)) return 0;
  const nlohmann::json manifest = detail::parse_json_document(detail::read_file(path, 1 << 26), path, Status::io_error);
  EMBEDKIT_EXPECTS(manifest.is_object() && manifest.contains("generation") &&
                       manifest["generation"].is_number_integer(),
                   Status::io_error, "{}: no generation", path);
  return manifest["generation"].get<std::int64_t>();
}

}  // namespace

void TableCollection::save(std::string_view directory) const {
  detail::check_checkpoint_directory(directory);
  const std::string dir(directory);
  detail::ensure_directory(dir);
  const detail::DirectoryLock lock(dir);
  const std::int64_t generation = saved_generation(dir) + 1;
  nlohmann::json tables = nlohmann::json::array();
  for (std::size_t t = 0; t < impl_->tables.size(); ++t) {
    const std::string folder = table_folder(generation, t);
    impl_->tables[t].save(dir + "/" + folder);
    tables.push_back({{"name", impl_->config.tables[t].config.name}, {"directory", folder}});
  }
  const nlohmann::json manifest{{"format", "embedkit-collection"},
                                {"format_version", kCollectionFormat},
                                {"generation", generation},
                                {"config", nlohmann::json::parse(config().to_json())},
                                {"tables", std::move(tables)}};
  const std::string path = dir + "/" + std::string(kCollectionManifest);
  const std::string aside = fmt::format("{}.g{}.tmp", path, generation);
  std::filesystem::remove(aside);  // a killed save's
  detail::write_file_durably(aside, manifest.dump(2));
  detail::replace_file(aside, path);
  detail::sync_directory(dir);
  // Generations before the previous one: no manifest names them any more.
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    std::int64_t old = 0;
    std::size_t index = 0;
    if (std::sscanf(name.c_str(), "g%ld-t%zu", &old, &index) == 2 && name == table_folder(old, index) &&
        old < generation - 1) {
      std::filesystem::remove_all(entry.path());
    }
  }
}

TableCollection TableCollection::load(std::string_view directory, Context& context) {
  detail::check_checkpoint_directory(directory);
  const std::string dir(directory);
  const std::string path = dir + "/" + std::string(kCollectionManifest);
  const nlohmann::json manifest = detail::parse_json_document(detail::read_file(path, 1 << 26), path, Status::io_error);
  EMBEDKIT_EXPECTS(manifest.is_object() && manifest.value("format", "") == "embedkit-collection" &&
                       manifest.contains("format_version") && manifest["format_version"] == kCollectionFormat &&
                       manifest.contains("config") && manifest.contains("tables") && manifest["tables"].is_array(),
                   Status::io_error, "{}: not an embedkit collection manifest of format version {}", path,
                   kCollectionFormat);
  CollectionConfig config;
  try {
    config = CollectionConfig::from_json(manifest["config"].dump());
  } catch (const Error& e) {
    throw Error(Status::io_error, fmt::format("{}: {}", path, e.what()));
  }
  const nlohmann::json& tables = manifest["tables"];
  EMBEDKIT_EXPECTS(tables.size() == config.tables.size(), Status::io_error, "{}: {} table folders for {} tables", path,
                   tables.size(), config.tables.size());
  std::vector<std::string> folders;
  for (std::size_t t = 0; t < tables.size(); ++t) {
    const nlohmann::json& entry = tables[t];
    EMBEDKIT_EXPECTS(entry.is_object() && entry.contains("directory") && entry["directory"].is_string() &&
                         entry.value("name", "") == config.tables[t].config.name,
                     Status::io_error, "{}: tables[{}] does not name table '{}' and its folder", path, t,
                     config.tables[t].config.name);
    const std::string folder = entry["directory"].get<std::string>();
    EMBEDKIT_EXPECTS(!folder.empty() && folder.find('/') == std::string::npos && folder != "." && folder != "..",
                     Status::io_error, "{}: tables[{}]'s folder '{}' is not a folder of the checkpoint", path, t,
                     folder);
    folders.push_back(dir + "/" + folder);
  }
  std::vector<std::optional<EmbeddingTable>> made(config.tables.size());
  for (const std::size_t t : creation_order(config)) {
    made[t].emplace(EmbeddingTable::load(folders[t], context));
    const TableConfig loaded = made[t]->config();
    EMBEDKIT_EXPECTS(loaded.input_dim == config.tables[t].config.input_dim &&
                         loaded.output_dim == config.tables[t].config.output_dim,
                     Status::io_error, "{}: table '{}' holds {} x {}, the manifest says {} x {}", folders[t],
                     config.tables[t].config.name, loaded.input_dim, loaded.output_dim,
                     config.tables[t].config.input_dim, config.tables[t].config.output_dim);
  }
  TableCollection collection;
  collection.impl_ = std::make_unique<Impl>();
  adopt(*collection.impl_, std::move(config), std::move(made));
  return collection;
}

TableCollection::~TableCollection() = default;
TableCollection::TableCollection(TableCollection&&) noexcept = default;
TableCollection& TableCollection::operator=(TableCollection&&) noexcept = default;

CollectionConfig TableCollection::config() const {
  CollectionConfig config = impl_->config;
  for (std::size_t t = 0; t < config.tables.size(); ++t) config.tables[t].config = impl_->tables[t].config();
  return config;
}

std::size_t TableCollection::table_count() const noexcept { return impl_->tables.size(); }
EmbeddingTable& TableCollection::table(std::size_t i) {
  EMBEDKIT_EXPECTS(i < impl_->tables.size(), Status::out_of_range, "table {} is not in [0, {})", i,
                   impl_->tables.size());
  return impl_->tables[i];
}
const EmbeddingTable& TableCollection::table(std::size_t i) const {
  return const_cast<TableCollection&>(*this).table(i);
}
EmbeddingTable& TableCollection::table(std::string_view name) {
  for (std::size_t t = 0; t < impl_->tables.size(); ++t) {
    if (impl_->config.tables[t].config.name == name) return impl_->tables[t];
  }
  throw Error(Status::invalid_argument, fmt::format("the collection has no table named '{}'", name));
}

std::vector<std::string> TableCollection::feature_names() const {
  std::vector<std::string> names;
  for (const Feature& feature : impl_->features) names.push_back(feature.name);
  return names;
}

std::vector<std::int64_t> TableCollection::feature_dims() const {
  std::vector<std::int64_t> dims;
  for (const Feature& feature : impl_->features) dims.push_back(feature.dim);
  return dims;
}

std::int64_t TableCollection::pooled_width() const noexcept { return impl_->width; }

std::int64_t TableCollection::batch_size(const KeyedJaggedBatch& batch) const {
  return resolve(*impl_, batch, false).batch;
}

Array<float> TableCollection::lookup_pooled(const KeyedJaggedBatch& batch) const {
  const std::int64_t samples = batch_size(batch);
  Array<float> out{{samples, impl_->width}, Buffer<float>(static_cast<std::size_t>(samples * impl_->width))};
  lookup_pooled(batch, out.values);
  return out;
}

namespace {

// Where feature f's pooled rows go: out + b·stride for sample b.
struct PooledTarget {
  float* out;
  std::int64_t stride;
};

void pooled_into(const CollectionImpl& impl, const KeyedJaggedBatch& batch, const Resolved& resolved,
                 std::span<const PooledTarget> targets) {
  const std::int64_t samples = resolved.batch;
  std::vector<std::size_t> own;    // features of tables that join the one CPU region
  std::vector<std::size_t> apart;  // the others: each feature through its table's lookup_pooled
  {
    // Whether a table joins is judged under its lock (a migrate may move it until then); the locks
    // go in table order, as a step takes them, and are released before the other tables' own calls.
    std::vector<std::shared_lock<detail::WriterPriorityMutex>> locks(impl.tables.size());
    std::vector<bool> joins(impl.tables.size(), false);
    for (std::size_t t = 0; t < impl.tables.size(); ++t) {
      const EmbeddingTable::Impl& table = detail::TableAccess::impl(impl.tables[t]);
      locks[t] = std::shared_lock(table.mutex);
      joins[t] = joins_cpu_region(table);
      if (!joins[t]) locks[t].unlock();
    }
    for (std::size_t f = 0; f < impl.features.size(); ++f) (joins[impl.features[f].table] ? own : apart).push_back(f);
    detail::with_ids(batch.values, [&](const auto* ids) {
      using Index = std::remove_cv_t<std::remove_pointer_t<decltype(ids)>>;
      std::vector<detail::PooledJob<Index>> jobs;
      for (const std::size_t f : own) {
        const Feature& feature = impl.features[f];
        const EmbeddingTable::Impl& table = detail::TableAccess::impl(impl.tables[feature.table]);
        const detail::TableView view = table.view();
        const PoolingMode mode = impl.config.tables[feature.table].pooling;
        const float* weights = batch.weights.empty() ? nullptr : batch.weights.data() + resolved.begin[f];
        jobs.push_back({{view.weights.as<float>(), view.input_dim, view.dim},
                        detail::pooled_batch(ids + resolved.begin[f], resolved.feature_offsets(f), samples, weights,
                                             mode, view.padding),
                        targets[f].out,
                        targets[f].stride});
      }
      detail::host_ops().pooled_many(std::span<const detail::PooledJob<Index>>(jobs));
    });
  }
  for (const std::size_t f : own) {
    detail::record_zero_filled(
        const_cast<EmbeddingTable::Impl&>(detail::TableAccess::impl(impl.tables[impl.features[f].table])),
        resolved.filled[f]);
  }
  for (const std::size_t f : apart) {
    const Feature& feature = impl.features[f];
    const EmbeddingTable& table = impl.tables[feature.table];
    const std::span<const float> weights = batch.weights.empty()
                                               ? std::span<const float>()
                                               : batch.weights.subspan(static_cast<std::size_t>(resolved.begin[f]),
                                                                       static_cast<std::size_t>(resolved.count[f]));
    const std::span<const std::int64_t> offsets(resolved.feature_offsets(f), static_cast<std::size_t>(samples + 1));
    const PooledTarget& target = targets[f];
    if (target.stride == feature.dim) {
      table.lookup_pooled(id_slice(batch.values, resolved.begin[f], resolved.count[f]), offsets,
                          impl.config.tables[feature.table].pooling, weights,
                          std::span<float>(target.out, static_cast<std::size_t>(samples * feature.dim)));
      continue;
    }
    const Array<float> pooled = table.lookup_pooled(id_slice(batch.values, resolved.begin[f], resolved.count[f]),
                                                    offsets, impl.config.tables[feature.table].pooling, weights);
    for (std::int64_t b = 0; b < samples; ++b) {
      std::copy_n(pooled.values.data() + b * feature.dim, feature.dim, target.out + b * target.stride);
    }
  }
}

void check_pooling_weights(const CollectionImpl& impl, const KeyedJaggedBatch& batch) {
  if (batch.weights.empty()) return;
  for (const Feature& feature : impl.features) {
    const PoolingMode mode = impl.config.tables[feature.table].pooling;
    EMBEDKIT_EXPECTS(!detail::picks_entry(mode), Status::invalid_argument,
                     "feature '{}': weights are not supported with table '{}''s pooling mode '{}'", feature.name,
                     impl.tables[feature.table].config().name, to_string(mode));
  }
}

}  // namespace

void TableCollection::lookup_pooled(const KeyedJaggedBatch& batch, std::span<float> out) const {
  const Impl& impl = *impl_;
  const Resolved resolved = resolve(impl, batch, false);
  check_pooling_weights(impl, batch);
  detail::expect_floats("pooled output", out.size(), resolved.batch, impl.width);
  const detail::NamedBytes output{"out", out.data(), out.size_bytes()};
  check_outputs(impl, std::span(&output, 1), input_memory(batch));
  std::vector<PooledTarget> targets;
  for (const Feature& feature : impl.features) targets.push_back({out.data() + feature.column, impl.width});
  pooled_into(impl, batch, resolved, targets);
}

void TableCollection::lookup_pooled(const KeyedJaggedBatch& batch, std::span<const std::span<float>> outs) const {
  const Impl& impl = *impl_;
  const Resolved resolved = resolve(impl, batch, false);
  check_pooling_weights(impl, batch);
  EMBEDKIT_EXPECTS(outs.size() == impl.features.size(), Status::shape_mismatch,
                   "{} outputs for the collection's {} features", outs.size(), impl.features.size());
  std::vector<detail::NamedBytes> outputs;
  std::vector<PooledTarget> targets;
  for (std::size_t f = 0; f < outs.size(); ++f) {
    const Feature& feature = impl.features[f];
    detail::expect_floats(fmt::format("output of feature '{}'", feature.name), outs[f].size(), resolved.batch,
                          feature.dim);
    outputs.push_back({fmt::format("output of feature '{}'", feature.name), outs[f].data(), outs[f].size_bytes()});
    targets.push_back({outs[f].data(), feature.dim});
  }
  check_outputs(impl, outputs, input_memory(batch));
  pooled_into(impl, batch, resolved, targets);
}

std::int64_t TableCollection::lookup_size(const KeyedJaggedBatch& batch) const {
  const Resolved resolved = resolve(*impl_, batch, true);
  std::int64_t size = 0;
  for (std::size_t f = 0; f < impl_->features.size(); ++f) size += resolved.count[f] * impl_->features[f].dim;
  return size;
}

namespace {

// Where feature f's rows start in a plain lookup's output (values' order: key after key).
std::vector<std::int64_t> plain_starts(const CollectionImpl& impl, const Resolved& resolved) {
  std::vector<std::size_t> by_key(impl.features.size());
  std::iota(by_key.begin(), by_key.end(), std::size_t{0});
  std::sort(by_key.begin(), by_key.end(),
            [&](std::size_t a, std::size_t b) { return resolved.key_of[a] < resolved.key_of[b]; });
  std::vector<std::int64_t> starts(impl.features.size());
  std::int64_t at = 0;
  for (const std::size_t f : by_key) {
    starts[f] = at;
    at += resolved.count[f] * impl.features[f].dim;
  }
  return starts;
}

}  // namespace

void TableCollection::lookup(const KeyedJaggedBatch& batch, std::span<float> out) const {
  const Impl& impl = *impl_;
  const Resolved resolved = resolve(impl, batch, true);
  const std::vector<std::int64_t> starts = plain_starts(impl, resolved);
  std::int64_t size = 0;
  for (std::size_t f = 0; f < impl.features.size(); ++f) size += resolved.count[f] * impl.features[f].dim;
  EMBEDKIT_EXPECTS(out.size() == static_cast<std::size_t>(size), Status::shape_mismatch,
                   "lookup output must hold {} floats (each value's row of its feature's dim), got {}", size,
                   out.size());
  const detail::NamedBytes output{"out", out.data(), out.size_bytes()};
  check_outputs(impl, std::span(&output, 1), input_memory(batch));
  for (std::size_t f = 0; f < impl.features.size(); ++f) {
    const Feature& feature = impl.features[f];
    impl.tables[feature.table].lookup(id_slice(batch.values, resolved.begin[f], resolved.count[f]),
                                      out.subspan(static_cast<std::size_t>(starts[f]),
                                                  static_cast<std::size_t>(resolved.count[f] * feature.dim)));
  }
}

namespace {

// One table's batch for a collection step, gathered from its features (a table serving one
// feature reads the caller's ids and weights in place).
struct TableBatch {
  std::vector<std::int32_t> ids32;
  std::vector<std::int64_t> ids64;
  std::vector<std::int64_t> offsets;
  std::vector<float> weights;
  std::span<float> grad;  // its rows of the call's gradient scratch
};

// The calling thread's gradient scratch for collection steps, kept between calls: a step's
// gradient is regrouped table by table, and fresh pages for it on every call cost page faults.
// A step writes every table: the batch and its gradient must lie apart from all of them.
void check_apart_from_tables(const TableCollection::Impl& impl, const KeyedJaggedBatch& batch,
                             std::span<const float> grad) {
  std::vector<detail::NamedBytes> inputs = input_memory(batch);
  inputs.push_back({"grad", grad.data(), grad.size_bytes()});
  for (const EmbeddingTable& table : impl.tables)
    detail::check_outputs_apart(detail::TableAccess::memory(table), inputs);
}

// The features table `t` serves, in config order.
std::vector<std::size_t> features_of_table(const TableCollection::Impl& impl, std::size_t t) {
  std::vector<std::size_t> served;
  for (std::size_t f = 0; f < impl.features.size(); ++f) {
    if (impl.features[f].table == t) served.push_back(f);
  }
  return served;
}

std::span<float> gradient_scratch(std::size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return {scratch.data(), floats};
}

}  // namespace

void TableCollection::train_step_pooled(const KeyedJaggedBatch& batch, std::span<const float> grad) {
  Impl& impl = *impl_;
  const Resolved resolved = resolve(impl, batch, false);
  check_pooling_weights(impl, batch);
  const std::int64_t samples = resolved.batch;
  detail::expect_floats("grad", grad.size(), samples, impl.width);
  check_apart_from_tables(impl, batch, grad);
  std::vector<TableBatch> batches(impl.tables.size());
  std::vector<detail::TableStep> steps;
  const std::span<float> scratch = gradient_scratch(grad.size());
  std::size_t used = 0;
  for (std::size_t t = 0; t < impl.tables.size(); ++t) {
    const std::vector<std::size_t> served = features_of_table(impl, t);
    const std::int64_t dim = impl.tables[t].output_dim();
    TableBatch& gathered = batches[t];
    std::int64_t entries = 0;
    for (const std::size_t f : served) entries += resolved.count[f];
    gathered.offsets.reserve(served.size() * static_cast<std::size_t>(samples) + 1);
    gathered.offsets.push_back(0);
    gathered.grad = scratch.subspan(used, served.size() * static_cast<std::size_t>(samples * dim));
    used += gathered.grad.size();
    std::int64_t base = 0;
    for (std::size_t k = 0; k < served.size(); ++k) {
      const std::size_t f = served[k];
      const std::int64_t* local = resolved.feature_offsets(f);
      for (std::int64_t s = 1; s <= samples; ++s) gathered.offsets.push_back(base + local[s]);
      base += resolved.count[f];
      for (std::int64_t b = 0; b < samples; ++b) {
        std::copy_n(grad.data() + b * impl.width + impl.features[f].column, dim,
                    gathered.grad.data() + (static_cast<std::int64_t>(k) * samples + b) * dim);
      }
    }
    const bool in_place = served.size() == 1;
    const std::span<const float> weights =
        batch.weights.empty() ? std::span<const float>()
        : in_place            ? batch.weights.subspan(static_cast<std::size_t>(resolved.begin[served[0]]),
                                                      static_cast<std::size_t>(entries))
                              : [&] {
                       for (const std::size_t f : served) {
                         const float* from = batch.weights.data() + resolved.begin[f];
                         gathered.weights.insert(gathered.weights.end(), from, from + resolved.count[f]);
                       }
                       return std::span<const float>(gathered.weights);
                     }();
    const IndexTensor indices =
        in_place ? id_slice(batch.values, resolved.begin[served[0]], entries)
                 : detail::with_ids(batch.values, [&](const auto* ids) {
                     using Index = std::remove_cv_t<std::remove_pointer_t<decltype(ids)>>;
                     std::vector<Index>& to = [&]() -> std::vector<Index>& {
                       if constexpr (std::is_same_v<Index, std::int32_t>) {
                         return gathered.ids32;
                       } else {
                         return gathered.ids64;
                       }
                     }();
                     for (const std::size_t f : served) {
                       to.insert(to.end(), ids + resolved.begin[f], ids + resolved.begin[f] + resolved.count[f]);
                     }
                     return IndexTensor(to.data(), {entries});
                   });
    steps.push_back(
        {&impl.tables[t], indices, gathered.offsets, true, impl.config.tables[t].pooling, weights, gathered.grad});
  }
  detail::train_tables(steps);
}

void TableCollection::train_step(const KeyedJaggedBatch& batch, std::span<const float> grad) {
  Impl& impl = *impl_;
  const Resolved resolved = resolve(impl, batch, true);
  const std::vector<std::int64_t> starts = plain_starts(impl, resolved);
  std::int64_t size = 0;
  for (std::size_t f = 0; f < impl.features.size(); ++f) size += resolved.count[f] * impl.features[f].dim;
  EMBEDKIT_EXPECTS(grad.size() == static_cast<std::size_t>(size), Status::shape_mismatch,
                   "grad must hold {} floats (each value's row of its feature's dim), got {}", size, grad.size());
  check_apart_from_tables(impl, batch, grad);
  std::vector<TableBatch> batches(impl.tables.size());
  std::vector<detail::TableStep> steps;
  const std::span<float> scratch = gradient_scratch(grad.size());
  std::size_t used = 0;
  for (std::size_t t = 0; t < impl.tables.size(); ++t) {
    const std::vector<std::size_t> served = features_of_table(impl, t);
    const std::int64_t dim = impl.tables[t].output_dim();
    TableBatch& gathered = batches[t];
    std::int64_t entries = 0;
    for (const std::size_t f : served) entries += resolved.count[f];
    gathered.grad = scratch.subspan(used, static_cast<std::size_t>(entries * dim));
    for (const std::size_t f : served) {
      std::copy_n(grad.data() + starts[f], resolved.count[f] * dim, scratch.data() + used);
      used += static_cast<std::size_t>(resolved.count[f] * dim);
    }
    const IndexTensor indices = detail::with_ids(batch.values, [&](const auto* ids) {
      using Index = std::remove_cv_t<std::remove_pointer_t<decltype(ids)>>;
      std::vector<Index>& to = [&]() -> std::vector<Index>& {
        if constexpr (std::is_same_v<Index, std::int32_t>) {
          return gathered.ids32;
        } else {
          return gathered.ids64;
        }
      }();
      for (const std::size_t f : served) {
        to.insert(to.end(), ids + resolved.begin[f], ids + resolved.begin[f] + resolved.count[f]);
      }
      return IndexTensor(to.data(), {entries});
    });
    steps.push_back({&impl.tables[t], indices, {}, false, PoolingMode::sum, {}, gathered.grad});
  }
  detail::train_tables(steps);
}

}  // namespace embedkit
