// Checkpoints: a directory holding manifest.json and one .npy file per array, saved so that a crash
// at any moment leaves the old checkpoint or the new one, and loaded with every byte checked.
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>
#include <embedkit/version.hpp>

#include "config/config_json.hpp"
#include "config/json_document.hpp"
#include "config/json_fields.hpp"
#include "config/optimizer_rules.hpp"
#include "config/optimizer_state.hpp"
#include "core/log.hpp"
#include "core/shape.hpp"
#include "core/step_limit.hpp"
#include "io/checkpoint_names.hpp"
#include "io/files.hpp"
#include "io/npy.hpp"
#include "table/table_impl.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace embedkit {
namespace {

constexpr const char* kFormat = "embedkit-checkpoint";
constexpr int kFormatVersion = 1;
constexpr std::string_view kManifest = detail::kManifestName;

std::string join(std::string_view directory, std::string_view name) { return fmt::format("{}/{}", directory, name); }

[[noreturn]] void bad_manifest(const std::string& what) {
  throw Error(Status::io_error, fmt::format("{}: {}", kManifest, what));
}

// The data files the previous generation's manifest lists, which this save keeps: none when there
// is no manifest, nullopt when it does not parse (a torn or foreign manifest: this save then deletes
// nothing old). A manifest that is not a regular file is an error, at once.
std::optional<std::set<std::string>> previous_generation(const std::string& manifest_path) {
  struct stat info {};
  if (::lstat(manifest_path.c_str(), &info) != 0 && errno == ENOENT) return std::set<std::string>();
  const std::string text = detail::read_file(manifest_path, detail::kMaxManifestBytes);
  std::set<std::string> names;
  try {
    const nlohmann::json manifest = detail::parse_json_document(text, kManifest, Status::io_error);
    for (const auto& file : manifest.at("files")) {
      const std::string name = file.at("name").get<std::string>();
      if (detail::is_checkpoint_data_name(name)) names.insert(name);
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return names;
}

// Deletes the files of a save's forms in `dir` that neither `current` nor `previous` lists: older
// generations, and what killed saves left. A file that cannot be deleted is only a warning: the save is in.
void delete_unlisted(const std::string& dir, const std::set<std::string>& current,
                     const std::set<std::string>& previous) {
  std::vector<std::string> doomed;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) {
    detail::logger().warn("checkpoint {}: could not list it to delete old files", dir);
    return;
  }
  while (const dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    if (detail::is_checkpoint_file_name(name) && current.count(name) == 0 && previous.count(name) == 0) {
      doomed.push_back(name);
    }
  }
  ::closedir(listing);
  for (const std::string& name : doomed) {
    if (std::remove(join(dir, name).c_str()) != 0 && errno != ENOENT) {
      detail::logger().warn("checkpoint {}: could not delete the old file {}", dir, name);
    }
    detail::checkpoint_fault_point("deleted " + name);
  }
}

// Refuses a state value the optimizer's update cannot take (a NaN momentum, a negative accumulator
// whose square root is NaN at the next step, an accumulator of 0 that the config's epsilon does not
// keep from dividing 0 by 0), naming the file, the row and the value.
void check_state_values(const std::vector<float>& values, const detail::SlotSpec& spec, const std::string& file) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float v = values[i];
    const std::int64_t row = static_cast<std::int64_t>(i) / spec.width;
    if (!std::isfinite(v) || (spec.non_negative && v < 0.0f)) {
      throw Error(Status::io_error, fmt::format("{}: row {} holds {}, which is not finite{} as the optimizer state "
                                                "'{}' must be",
                                                file, row, v, spec.non_negative ? " and >= 0" : "", spec.name));
    }
    // The rule validate() applies to initial_accumulator_value, applied to every saved value.
    if (spec.zero_divides && detail::zero_in_step(v)) {
      throw Error(Status::io_error, fmt::format("{}: row {} holds {}, which is 0 in a step (denormals are flushed): "
                                                "the optimizer state '{}' of this config would divide 0 by 0 on a "
                                                "zero gradient",
                                                file, row, v, spec.name));
    }
  }
}

struct SavedArray {
  std::string role;  // "weights" or "optimizer_state"
  std::string slot;  // the state's name
  std::vector<std::int64_t> shape;
  std::vector<float> values;          // a float32 array
  DType type = DType::float32;        // the weights' storage type
  std::vector<std::uint16_t> narrow;  // float16 or bfloat16 weights, as stored
};

// The storage type of a file entry: its .npy dtype, with the manifest's "storage" naming bfloat16
// (NumPy has none; its bits are '<u2').
DType entry_type(const nlohmann::json& file, const std::string& name) {
  const std::string descr = file.value("dtype", "<f4");
  if (descr == "<f4") return DType::float32;
  if (descr == "<f2") return DType::float16;
  if (descr == "<u2" && file.value("storage", "") == "bfloat16") return DType::bfloat16;
  throw Error(Status::io_error,
              fmt::format("{}: dtype '{}' (storage '{}') is not one a checkpoint holds ('<f4', '<f2', or '<u2' with "
                          "storage 'bfloat16')",
                          name, descr, file.value("storage", "")));
}

}  // namespace

void EmbeddingTable::save(std::string_view directory) const {
  detail::check_checkpoint_directory(directory);
  const Impl& impl = *impl_;
  if (impl.config.optimizer.kind == OptimizerKind::custom) {
    throw Error(Status::unsupported, fmt::format("table '{}' has a custom optimizer, which is code and cannot be "
                                                 "saved; save its weights with get_weights()",
                                                 impl.config.name));
  }
  const std::string dir(directory);
  detail::ensure_directory(dir);
  // One save at a time in a directory (threads, tables and processes alike): a save's cleanup deletes
  // files of a save's forms that no manifest lists, which includes those of a save still writing.
  // Taken before the arrays are copied, so saves land in the order their states were taken.
  const detail::DirectoryLock one_save_at_a_time(dir);
  // The arrays, copied out under the table's lock, so the checkpoint is one step's state.
  std::vector<SavedArray> arrays;
  nlohmann::json manifest;
  {
    std::shared_lock lock(impl.mutex);
    SavedArray matrix{"weights", "", {input_dim(), output_dim()}, {}, impl.config.dtype, {}};
    if (impl.config.dtype == DType::float32) {
      matrix.values.resize(impl.weight_count());
      impl.read_floats(0, impl.weight_count(), matrix.values.data());
    } else {  // the rows' own bits: a narrower checkpoint, read back exactly
      matrix.narrow.resize(impl.weight_count());
      impl.backend->copy_to_host(matrix.narrow.data(), impl.weights.as<void>(),
                                 matrix.narrow.size() * sizeof(std::uint16_t));
    }
    arrays.push_back(std::move(matrix));
    for (std::size_t k = 0; k < impl.slot_specs.size(); ++k) {
      const detail::SlotSpec& spec = impl.slot_specs[k];
      SavedArray state{"optimizer_state", spec.name, {input_dim(), spec.width}, {}, DType::float32, {}};
      state.values.resize(static_cast<std::size_t>(input_dim() * spec.width));
      impl.backend->copy_to_host(state.values.data(), impl.slots[k].as<void>(), state.values.size() * sizeof(float));
      arrays.push_back(std::move(state));
    }
    manifest = {{"format", kFormat},
                {"format_version", kFormatVersion},
                {"embedkit_version", EMBEDKIT_VERSION_STRING},
                {"config", detail::config_to_json(impl.config)},
                {"seed", *impl.config.seed},
                {"step", impl.step.load()},
                {"placement",
                 {{"device", impl.placement.device_name()}, {"reason_code", to_string(impl.placement.reason_code)}}}};
  }
  // New names for this save: the old checkpoint's files stay untouched until the new manifest is in.
  std::random_device random;
  const std::string token = detail::checkpoint_token(manifest["step"].get<std::int64_t>(), random(), random());
  const std::string manifest_path = join(dir, kManifest);
  const std::optional<std::set<std::string>> previous = previous_generation(manifest_path);
  std::vector<std::string> written;  // every file this save creates, the one that failed included
  std::set<std::string> current;
  try {
    nlohmann::json files = nlohmann::json::array();
    for (const SavedArray& array : arrays) {
      const std::string name =
          array.role == "weights" ? detail::weights_file_name(token) : detail::state_file_name(array.slot, token);
      const std::string bytes = array.type == DType::float32
                                    ? detail::npy_bytes(array.values.data(), array.shape)
                                    : detail::npy_bytes(array.narrow.data(), array.type, array.shape);
      written.push_back(name);
      detail::write_file_durably(join(dir, name), bytes);
      detail::checkpoint_fault_point("wrote " + name);
      nlohmann::json entry = {{"name", name},
                              {"role", array.role},
                              {"shape", array.shape},
                              {"dtype", detail::npy_descr(array.type)},
                              {"xxh64", detail::checkpoint_checksum(bytes)}};
      if (array.type == DType::bfloat16) entry["storage"] = "bfloat16";
      if (!array.slot.empty()) entry["slot"] = array.slot;
      files.push_back(std::move(entry));
      current.insert(name);
    }
    manifest["files"] = files;
    const std::string temporary = detail::manifest_temporary_name(token);
    written.push_back(temporary);
    detail::write_file_durably(join(dir, temporary), manifest.dump(2) + "\n");
    detail::checkpoint_fault_point("wrote " + temporary);
    detail::replace_file(join(dir, temporary), manifest_path);
  } catch (...) {
    // Not in: the previous generation stands, and this save's files (a partial one of a full disk or
    // a file size limit included) go, so failed saves never pile up.
    for (const std::string& name : written) std::remove(join(dir, name).c_str());
    throw;
  }
  detail::checkpoint_fault_point("renamed the manifest");
  detail::sync_directory(dir);
  detail::checkpoint_fault_point("synced the directory");
  // One previous generation stays, so that a load that read the previous manifest still finds its files.
  if (previous) {
    delete_unlisted(dir, current, *previous);
  } else {
    detail::logger().warn("checkpoint {}: the previous manifest did not parse; no old file deleted", dir);
  }
  detail::logger().info("table '{}' saved to {} (step {})", impl.config.name, dir,
                        manifest["step"].get<std::int64_t>());
}

EmbeddingTable EmbeddingTable::load(std::string_view directory, Context& context) {
  return load_as(directory, std::nullopt, context);
}

EmbeddingTable EmbeddingTable::load(std::string_view directory, DType dtype, Context& context) {
  return load_as(directory, dtype, context);
}

EmbeddingTable EmbeddingTable::load_as(std::string_view directory, std::optional<DType> dtype, Context& context) {
  detail::check_checkpoint_directory(directory);
  const std::string dir(directory);
  // The table a manifest's text describes, every file read and checked before the table exists.
  const auto load_generation = [&](const std::string& manifest_text) -> EmbeddingTable {
    const nlohmann::json manifest = detail::parse_json_document(manifest_text, kManifest, Status::io_error);
    std::int64_t step = 0;
    try {
      if (manifest.value("format", "") != kFormat) bad_manifest("not an embedkit checkpoint manifest");
      const nlohmann::json version = manifest.value("format_version", nlohmann::json());
      if (version != kFormatVersion) {
        bad_manifest(fmt::format("format version {} is not supported (this embedkit reads {})",
                                 detail::json_repr(version), kFormatVersion));
      }
      // Typed reads: get<std::int64_t>() would convert a float or a boolean, and 1e300 out of range.
      step = detail::checked_step(detail::integer(manifest.at("step"), "step"));
    } catch (const nlohmann::json::exception& e) {
      bad_manifest(fmt::format("malformed: {}", e.what()));
    } catch (const Error& e) {
      if (e.status() == Status::io_error) throw;
      bad_manifest(e.what());
    }
    TableConfig config;
    try {
      config = detail::config_from_json(manifest.at("config"));
    } catch (const nlohmann::json::exception& e) {
      bad_manifest(fmt::format("malformed: {}", e.what()));
    } catch (const Error& e) {
      bad_manifest(fmt::format("config: {}", e.what()));
    }
    // Every file is read and checked before the table exists.
    const std::vector<detail::SlotSpec> specs = detail::slot_specs(config.optimizer, config.output_dim);
    std::vector<float> weights;
    std::vector<std::vector<float>> states(specs.size());
    std::vector<bool> seen(specs.size(), false);
    bool seen_weights = false;
    try {
      for (const auto& file : manifest.at("files")) {
        const std::string name = file.at("name").get<std::string>();
        detail::check_listed_name(name);
        const std::string role = file.at("role").get<std::string>();
        std::vector<std::int64_t> expected;
        std::vector<float>* target = nullptr;
        const detail::SlotSpec* spec = nullptr;
        if (role == "weights" && !seen_weights) {
          expected = {config.input_dim, config.output_dim};
          target = &weights;
          seen_weights = true;
        } else if (role == "optimizer_state") {
          const std::string slot = file.at("slot").get<std::string>();
          for (std::size_t k = 0; k < specs.size(); ++k) {
            if (specs[k].name == slot && !seen[k]) {
              expected = {config.input_dim, specs[k].width};
              target = &states[k];
              spec = &specs[k];
              seen[k] = true;
            }
          }
        }
        if (target == nullptr)
          bad_manifest(fmt::format("names {} as '{}', which this table does not have or has twice", name, role));
        const auto check_shape = [&](const std::vector<std::int64_t>& shape) {
          if (shape != expected) {
            throw Error(Status::io_error, fmt::format("{}: shape {} does not match the table's {}", name,
                                                      detail::format_shape(shape), detail::format_shape(expected)));
          }
        };
        std::vector<std::int64_t> listed_shape;
        for (const auto& extent : file.at("shape")) listed_shape.push_back(detail::integer(extent, "shape"));
        check_shape(listed_shape);
        const DType type = entry_type(file, name);
        if (type != DType::float32 && role != "weights") {
          throw Error(Status::io_error, fmt::format("{}: optimizer state is float32, the manifest says '{}'", name,
                                                    file.value("dtype", "")));
        }
        // The file's size is checked against that shape before a byte of it is read.
        const std::string bytes = detail::read_npy_file(join(dir, name), name, &expected, {}, type);
        if (detail::checkpoint_checksum(bytes) != file.at("xxh64").get<std::string>()) {
          throw Error(Status::io_error, fmt::format("{}: checksum mismatch", name));
        }
        detail::NpyArray array = detail::parse_npy(bytes, name, type);
        check_shape(array.shape);
        if (spec != nullptr) check_state_values(array.values, *spec, name);
        *target = std::move(array.values);
      }
    } catch (const nlohmann::json::exception& e) {
      bad_manifest(fmt::format("malformed file entry: {}", e.what()));
    } catch (const Error& e) {
      if (e.status() == Status::io_error) throw;
      bad_manifest(fmt::format("malformed file entry: {}", e.what()));
    }
    if (!seen_weights) bad_manifest("names no weights file");
    for (std::size_t k = 0; k < specs.size(); ++k) {
      if (!seen[k]) bad_manifest(fmt::format("names no file for the optimizer state '{}'", specs[k].name));
    }
    if (dtype) config.dtype = *dtype;  // the values pass through float32, rounded into the asked type
    EmbeddingTable table(std::move(config), context, Fill::none);  // placed by today's policy
    Impl& impl = *table.impl_;
    impl.write_floats(0, impl.weight_count(), weights.data());
    for (std::size_t k = 0; k < specs.size(); ++k) {
      impl.backend->copy_from_host(impl.slots[k].as<void>(), states[k].data(), states[k].size() * sizeof(float));
    }
    impl.step = step;
    return table;
  };
  const std::string manifest_path = join(dir, kManifest);
  std::string manifest_text = detail::read_file(manifest_path, detail::kMaxManifestBytes);
  // A save into the same directory keeps one previous generation, so a load of the manifest it
  // replaced still finds its files; a load outrun by a second save fails on a missing file, and
  // then follows the newer manifest. An unchanged manifest means the checkpoint itself is damaged.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    try {
      return load_generation(manifest_text);
    } catch (const Error& e) {
      if (e.status() != Status::io_error || attempt == kAttempts) throw;
      std::string now;
      try {
        now = detail::read_file(manifest_path, detail::kMaxManifestBytes);
      } catch (const Error&) {
        throw e;
      }
      if (now == manifest_text) throw;
      detail::logger().debug("checkpoint {}: {}; a save replaced the manifest, loading the new one", dir, e.what());
      manifest_text = std::move(now);
    }
  }
}

}  // namespace embedkit
