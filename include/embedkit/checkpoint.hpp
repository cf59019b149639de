#pragma once
/// @file checkpoint.hpp
/// @brief Reading a checkpoint directory without loading it into a table (`embedkit inspect`).

#include <embedkit/export.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embedkit {

/// @brief One data file a checkpoint's manifest names.
struct CheckpointFile {
  std::string name;
  std::string role;  ///< "weights" or "optimizer_state"
  std::string slot;  ///< the optimizer state's name
  std::vector<std::int64_t> shape;
  bool ok = false;    ///< present, checksum and format good
  std::string error;  ///< why not, when not ok
};

/// @brief A checkpoint as its manifest describes it, each file checked, and the weights' row norms.
struct CheckpointInfo {
  std::string manifest_json;  ///< the manifest as written
  std::string name;
  std::int64_t input_dim = 0;
  std::int64_t output_dim = 0;
  std::int64_t step = 0;
  std::string optimizer;
  std::vector<CheckpointFile> files;
  bool weights_ok = false;  ///< the statistics below are filled when true
  double row_norm_min = 0, row_norm_mean = 0, row_norm_max = 0;
  std::int64_t zero_rows = 0;  ///< rows whose values are all 0
};

/// @brief Reads and checks the checkpoint in `directory` without building a table.
/// @throws Error(io_error) when the manifest itself is missing or malformed; a bad data file is
///         reported in its CheckpointFile instead. Error(invalid_argument) for an empty `directory`
///         (use "." for this one), before anything is read.
EMBEDKIT_API CheckpointInfo inspect_checkpoint(std::string_view directory);

}  // namespace embedkit
