// inspect_checkpoint: a checkpoint's manifest, each file checked, and its weights' row norms.
#include <embedkit/checkpoint.hpp>
#include <embedkit/status.hpp>

#include "io/files.hpp"
#include "io/npy.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <cmath>
#include <limits>

namespace embedkit {

CheckpointInfo inspect_checkpoint(std::string_view directory) {
  const std::string dir(directory);
  CheckpointInfo info;
  info.manifest_json = detail::read_file(dir + "/manifest.json");
  nlohmann::json manifest;
  try {
    manifest = nlohmann::json::parse(info.manifest_json);
    info.name = manifest.at("config").value("name", "");
    info.input_dim = manifest.at("config").at("input_dim").get<std::int64_t>();
    info.output_dim = manifest.at("config").at("output_dim").get<std::int64_t>();
    info.step = manifest.at("step").get<std::int64_t>();
    const auto& optimizer = manifest.at("config").value("optimizer", nlohmann::json());
    info.optimizer = optimizer.is_object() ? optimizer.value("class_name", "") : std::string("custom");
    for (const auto& entry : manifest.at("files")) {
      CheckpointFile file;
      file.name = entry.at("name").get<std::string>();
      file.role = entry.at("role").get<std::string>();
      file.slot = entry.value("slot", "");
      file.shape = entry.at("shape").get<std::vector<std::int64_t>>();
      info.files.push_back(std::move(file));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::io_error, fmt::format("manifest.json: malformed: {}", e.what()));
  }
  for (std::size_t k = 0; k < info.files.size(); ++k) {
    CheckpointFile& file = info.files[k];
    try {
      if (file.name.find('/') != std::string::npos || file.name.find("..") != std::string::npos) {
        throw Error(Status::io_error, fmt::format("{}: not a plain file name inside the directory", file.name));
      }
      const std::string bytes = detail::read_file(dir + "/" + file.name);
      const std::string sum = fmt::format("{:016x}", XXH64(bytes.data(), bytes.size(), 0));
      if (sum != manifest["files"][k].value("xxh64", "")) {
        throw Error(Status::io_error, fmt::format("{}: checksum mismatch", file.name));
      }
      const detail::NpyArray array = detail::parse_npy(bytes, file.name);
      if (array.shape != file.shape) throw Error(Status::io_error, fmt::format("{}: shape differs from the manifest's", file.name));
      file.ok = true;
      if (file.role != "weights" || array.shape.size() != 2) continue;
      const std::int64_t rows = array.shape[0], dim = array.shape[1];
      double sum_norms = 0, low = std::numeric_limits<double>::infinity(), high = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        double squares = 0;
        bool zero = true;
        for (std::int64_t c = 0; c < dim; ++c) {
          const double v = array.values[r * dim + c];
          squares += v * v;
          zero = zero && v == 0.0;
        }
        const double norm = std::sqrt(squares);
        sum_norms += norm;
        low = std::min(low, norm);
        high = std::max(high, norm);
        info.zero_rows += zero ? 1 : 0;
      }
      info.weights_ok = rows > 0;
      info.row_norm_min = rows > 0 ? low : 0;
      info.row_norm_max = high;
      info.row_norm_mean = rows > 0 ? sum_norms / static_cast<double>(rows) : 0;
    } catch (const Error& e) {
      file.error = e.what();
    }
  }
  return info;
}

}  // namespace embedkit
