// inspect_checkpoint: a checkpoint's manifest, each file checked, and its weights' row norms.
#include <embedkit/checkpoint.hpp>
#include <embedkit/status.hpp>

#include "config/json_document.hpp"
#include "config/json_fields.hpp"
#include "core/expects.hpp"
#include "io/checkpoint_names.hpp"
#include "io/files.hpp"
#include "io/npy.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace embedkit {

CheckpointInfo inspect_checkpoint(std::string_view directory) {
  detail::check_checkpoint_directory(directory);  // "" would read /manifest.json
  const std::string dir(directory);
  CheckpointInfo info;
  info.manifest_json = detail::read_file(dir + "/manifest.json", detail::kMaxManifestBytes);
  std::vector<std::string> checksums;  // one per file, as the manifest records them
  std::vector<DType> types;            // and its storage type (bfloat16: '<u2' with "storage")
  try {
    const nlohmann::json manifest = detail::parse_json_document(info.manifest_json, "manifest.json", Status::io_error);
    // Typed reads: get<std::int64_t>() would convert a float or a boolean, and 1e300 out of range.
    info.name = manifest.at("config").value("name", "");
    info.input_dim = detail::integer(manifest.at("config").at("input_dim"), "config input_dim");
    info.output_dim = detail::integer(manifest.at("config").at("output_dim"), "config output_dim");
    info.step = detail::integer(manifest.at("step"), "step");
    const auto& optimizer = manifest.at("config").value("optimizer", nlohmann::json());
    info.optimizer = optimizer.is_object() ? optimizer.value("class_name", "") : std::string("custom");
    for (const auto& entry : manifest.at("files")) {
      CheckpointFile file;
      file.name = entry.at("name").get<std::string>();
      file.role = entry.at("role").get<std::string>();
      file.slot = entry.value("slot", "");
      for (const auto& extent : entry.at("shape")) file.shape.push_back(detail::integer(extent, "shape"));
      info.files.push_back(std::move(file));
      checksums.push_back(entry.value("xxh64", ""));
      const std::string descr = entry.value("dtype", "<f4");
      types.push_back(descr == "<f2"                                               ? DType::float16
                      : descr == "<u2" && entry.value("storage", "") == "bfloat16" ? DType::bfloat16
                                                                                   : DType::float32);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::io_error, fmt::format("manifest.json: malformed: {}", e.what()));
  } catch (const Error& e) {
    if (e.status() == Status::io_error) throw;
    throw Error(Status::io_error, fmt::format("manifest.json: malformed: {}", e.what()));
  }
  for (std::size_t k = 0; k < info.files.size(); ++k) {
    CheckpointFile& file = info.files[k];
    try {
      detail::check_listed_name(file.name);
      // The size against the manifest's shape before a byte is read: a sparse 100 GiB file is refused.
      const std::string bytes = detail::read_npy_file(dir + "/" + file.name, file.name, &file.shape, {}, types[k]);
      EMBEDKIT_EXPECTS(detail::checkpoint_checksum(bytes) == checksums[k], Status::io_error, "{}: checksum mismatch",
                       file.name);
      const detail::NpyArray array = detail::parse_npy(bytes, file.name, types[k]);
      EMBEDKIT_EXPECTS(array.shape == file.shape, Status::io_error, "{}: shape differs from the manifest's", file.name);
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
