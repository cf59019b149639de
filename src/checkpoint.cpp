// Checkpoints: a directory holding manifest.json and one .npy file per array, saved so that a crash
// at any moment leaves the old checkpoint or the new one, and loaded with every byte checked.
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>
#include <embedkit/version.hpp>

#include "config_json.hpp"
#include "io/files.hpp"
#include "io/npy.hpp"
#include "json_document.hpp"
#include "json_fields.hpp"
#include "log.hpp"
#include "shape.hpp"
#include "table_impl.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace embedkit {
namespace {

constexpr const char* kFormat = "embedkit-checkpoint";
constexpr int kFormatVersion = 1;
constexpr const char* kManifest = "manifest.json";

std::string checksum(std::string_view bytes) {
  return fmt::format("{:016x}", XXH64(bytes.data(), bytes.size(), 0));
}

std::string join(std::string_view directory, std::string_view name) { return fmt::format("{}/{}", directory, name); }

[[noreturn]] void bad_manifest(const std::string& what) {
  throw Error(Status::io_error, fmt::format("{}: {}", kManifest, what));
}

// The data files a manifest names, when it can be read; nothing otherwise (a torn or foreign
// manifest names nothing this save may delete).
std::set<std::string> files_named_by(const std::string& manifest_path) {
  std::set<std::string> names;
  try {
    const nlohmann::json manifest =
        detail::parse_json_document(detail::read_file(manifest_path), kManifest, Status::io_error);
    for (const auto& file : manifest.at("files")) names.insert(file.at("name").get<std::string>());
  } catch (const std::exception&) {
  }
  return names;
}

// A name the manifest may use: a plain file name inside the directory.
bool is_plain_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name.find('\0') == std::string::npos &&
         name.find("..") == std::string::npos && name != ".";
}

void check_plain_name(const std::string& name) {
  if (!is_plain_name(name)) {
    // Quoted as JSON writes it: a NUL or a control character in the name stays visible.
    bad_manifest(fmt::format("names the file {}, which is not a plain file name inside the checkpoint directory",
                             detail::json_repr(name)));
  }
}

struct SavedArray {
  std::string role;  // "weights" or "optimizer_state"
  std::string slot;  // the state's name
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

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
  // The arrays, copied out under the lock, so the checkpoint is one step's state.
  std::vector<SavedArray> arrays;
  nlohmann::json manifest;
  {
    std::shared_lock lock(impl.mutex);
    SavedArray matrix{"weights", "", {input_dim(), output_dim()}, std::vector<float>(impl.weight_count())};
    impl.backend->copy_to_host(matrix.values.data(), impl.weights.as<void>(), matrix.values.size() * sizeof(float));
    arrays.push_back(std::move(matrix));
    for (std::size_t k = 0; k < impl.slot_specs.size(); ++k) {
      const detail::SlotSpec& spec = impl.slot_specs[k];
      SavedArray state{"optimizer_state", spec.name, {input_dim(), spec.width}, {}};
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
                {"placement", {{"device", impl.placement.device_name()},
                               {"reason_code", to_string(impl.placement.reason_code)}}}};
  }
  // New names for this save: the old checkpoint's files stay untouched until the new manifest is in.
  std::random_device random;
  const std::string token = fmt::format("{:08d}-{:08x}{:08x}", manifest["step"].get<std::int64_t>(), random(), random());
  const std::set<std::string> old_files = files_named_by(join(dir, kManifest));
  nlohmann::json files = nlohmann::json::array();
  for (const SavedArray& array : arrays) {
    const std::string name = array.role == "weights" ? fmt::format("weights-{}.npy", token)
                                                     : fmt::format("state-{}-{}.npy", array.slot, token);
    const std::string bytes = detail::npy_bytes(array.values.data(), array.shape);
    detail::write_file_durably(join(dir, name), bytes);
    detail::checkpoint_fault_point("wrote " + name);
    nlohmann::json entry = {{"name", name}, {"role", array.role}, {"shape", array.shape}, {"dtype", "<f4"},
                            {"xxh64", checksum(bytes)}};
    if (!array.slot.empty()) entry["slot"] = array.slot;
    files.push_back(std::move(entry));
  }
  manifest["files"] = files;
  const std::string temporary = fmt::format("{}.tmp-{}", kManifest, token);
  detail::write_file_durably(join(dir, temporary), manifest.dump(2) + "\n");
  detail::checkpoint_fault_point("wrote " + temporary);
  detail::replace_file(join(dir, temporary), join(dir, kManifest));
  detail::checkpoint_fault_point("renamed the manifest");
  detail::sync_directory(dir);
  detail::checkpoint_fault_point("synced the directory");
  for (const std::string& name : old_files) {
    if (!is_plain_name(name)) continue;  // never outside the directory
    if (std::remove(join(dir, name).c_str()) != 0) {
      detail::logger().warn("checkpoint {}: could not delete the old file {}", dir, name);
    }
    detail::checkpoint_fault_point("deleted " + name);
  }
  detail::logger().info("table '{}' saved to {} (step {})", impl.config.name, dir, manifest["step"].get<std::int64_t>());
}

EmbeddingTable EmbeddingTable::load(std::string_view directory, Context& context) {
  detail::check_checkpoint_directory(directory);
  const std::string dir(directory);
  const nlohmann::json manifest =
      detail::parse_json_document(detail::read_file(join(dir, kManifest)), kManifest, Status::io_error);
  std::int64_t step = 0;
  try {
    if (manifest.value("format", "") != kFormat) bad_manifest("not an embedkit checkpoint manifest");
    const nlohmann::json version = manifest.value("format_version", nlohmann::json());
    if (version != kFormatVersion) {
      bad_manifest(fmt::format("format version {} is not supported (this embedkit reads {})", detail::json_repr(version),
                               kFormatVersion));
    }
    // Typed reads: get<std::int64_t>() would convert a float or a boolean, and 1e300 out of range.
    step = detail::integer(manifest.at("step"), "step");
    if (step < 0) bad_manifest(fmt::format("step {} is negative", step));
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
      check_plain_name(name);
      const std::string bytes = detail::read_file(join(dir, name));
      if (checksum(bytes) != file.at("xxh64").get<std::string>()) {
        throw Error(Status::io_error, fmt::format("{}: checksum mismatch", name));
      }
      detail::NpyArray array = detail::parse_npy(bytes, name);
      const std::string role = file.at("role").get<std::string>();
      std::vector<std::int64_t> expected;
      std::vector<float>* target = nullptr;
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
            seen[k] = true;
          }
        }
      }
      if (target == nullptr) bad_manifest(fmt::format("names {} as '{}', which this table does not have or has twice", name, role));
      if (array.shape != expected) {
        throw Error(Status::io_error, fmt::format("{}: shape {} does not match the table's {}", name,
                                                  detail::format_shape(array.shape), detail::format_shape(expected)));
      }
      *target = std::move(array.values);
    }
  } catch (const nlohmann::json::exception& e) {
    bad_manifest(fmt::format("malformed file entry: {}", e.what()));
  }
  if (!seen_weights) bad_manifest("names no weights file");
  for (std::size_t k = 0; k < specs.size(); ++k) {
    if (!seen[k]) bad_manifest(fmt::format("names no file for the optimizer state '{}'", specs[k].name));
  }
  EmbeddingTable table(std::move(config), context, Fill::none);  // placed by today's policy
  Impl& impl = *table.impl_;
  impl.backend->copy_from_host(impl.weights.as<void>(), weights.data(), weights.size() * sizeof(float));
  for (std::size_t k = 0; k < specs.size(); ++k) {
    impl.backend->copy_from_host(impl.slots[k].as<void>(), states[k].data(), states[k].size() * sizeof(float));
  }
  impl.step = step;
  return table;
}

}  // namespace embedkit
