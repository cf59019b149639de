#pragma once
// What a checkpoint save writes into its directory, as one rule for the saver, the loader and
// inspect_checkpoint: a save writes `manifest.json.tmp-TOKEN`, `weights-TOKEN.npy` and
// `state-SLOT-TOKEN.npy` (TOKEN: the step in at least 8 digits, '-', 16 hex digits), and renames the
// first to `manifest.json`. A manifest may list only such data files, and a save deletes only files
// of these forms, so neither a hostile manifest nor a foreign file in the directory is ever deleted.

#include <embedkit/status.hpp>

#include "config/json_fields.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace embedkit::detail {

inline constexpr std::string_view kManifestName = "manifest.json";

/// A manifest holds a config and a few file entries: kilobytes. Anything near this is not one, and
/// is refused before it is read.
inline constexpr std::uint64_t kMaxManifestBytes = std::uint64_t{16} << 20;

inline std::string checkpoint_token(std::int64_t step, std::uint32_t random_high, std::uint32_t random_low) {
  std::string digits = std::to_string(step);
  if (digits.size() < 8) digits.insert(0, 8 - digits.size(), '0');
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(16, '0');
  const std::uint64_t random = std::uint64_t{random_high} << 32 | random_low;
  for (int k = 0; k < 16; ++k) hex[static_cast<std::size_t>(k)] = kHex[(random >> (60 - 4 * k)) & 0xf];
  return digits + "-" + hex;
}

inline std::string weights_file_name(std::string_view token) { return "weights-" + std::string(token) + ".npy"; }

inline std::string state_file_name(std::string_view slot, std::string_view token) {
  return "state-" + std::string(slot) + "-" + std::string(token) + ".npy";
}

inline std::string manifest_temporary_name(std::string_view token) {
  return std::string(kManifestName) + ".tmp-" + std::string(token);
}

/// Whether `text` is a TOKEN as checkpoint_token writes it.
inline bool is_checkpoint_token(std::string_view text) {
  const std::size_t dash = text.find('-');
  if (dash == std::string_view::npos || dash < 8 || text.size() != dash + 17) return false;
  for (std::size_t k = 0; k < text.size(); ++k) {
    const char c = text[k];
    const bool ok = k < dash ? (c >= '0' && c <= '9') : k == dash || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (!ok) return false;
  }
  return true;
}

/// Whether `name` is a data file name a save writes: what a manifest may list.
inline bool is_checkpoint_data_name(std::string_view name) {
  constexpr std::string_view kSuffix = ".npy";
  if (name.size() < kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  const std::string_view stem = name.substr(0, name.size() - kSuffix.size());
  if (stem.substr(0, 8) == "weights-") return is_checkpoint_token(stem.substr(8));
  if (stem.substr(0, 6) != "state-") return false;
  // state-SLOT-TOKEN: the token holds one '-', so the slot ends at the second '-' from the end.
  const std::size_t hex_dash = stem.rfind('-');
  const std::size_t step_dash =
      hex_dash == std::string_view::npos || hex_dash == 0 ? std::string_view::npos : stem.rfind('-', hex_dash - 1);
  if (step_dash == std::string_view::npos || step_dash <= 6) return false;
  for (const char c : stem.substr(6, step_dash - 6)) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return is_checkpoint_token(stem.substr(step_dash + 1));
}

/// Whether `name` is any file a save writes: a data file or a temporary manifest. Only these are
/// ever deleted by a later save.
inline bool is_checkpoint_file_name(std::string_view name) {
  const std::string prefix = manifest_temporary_name("");
  if (name.substr(0, prefix.size()) == prefix) return is_checkpoint_token(name.substr(prefix.size()));
  return is_checkpoint_data_name(name);
}

/// Refuses a name a manifest lists that is not a data file name a save writes (a path, the manifest
/// itself, a foreign file): Error(io_error) `manifest.json: names the file "../x", which is not ...`,
/// the name quoted as JSON writes it, so a NUL or a control character in it stays visible.
inline void check_listed_name(std::string_view name) {
  if (is_checkpoint_data_name(name)) return;
  throw Error(Status::io_error,
              fmt::format("{}: names the file {}, which is not a plain file name inside the checkpoint directory of a "
                          "form a save writes (weights-STEP-ID.npy, state-SLOT-STEP-ID.npy)",
                          kManifestName, json_repr(nlohmann::json(std::string(name)))));
}

/// A data file's checksum as a manifest records it: xxHash64 (seed 0), 16 lowercase hex digits.
inline std::string checkpoint_checksum(std::string_view bytes) {
  return fmt::format("{:016x}", XXH64(bytes.data(), bytes.size(), 0));
}

}  // namespace embedkit::detail
