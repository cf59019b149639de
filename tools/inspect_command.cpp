#include "inspect_command.hpp"

#include <embedkit/embedkit.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <string>

namespace embedkit::tools {

int run_inspect(const std::string& directory, bool json) {
  const CheckpointInfo info = inspect_checkpoint(directory);
  const bool all_ok = std::all_of(info.files.begin(), info.files.end(), [](const CheckpointFile& f) { return f.ok; });
  if (json) {
    nlohmann::json files = nlohmann::json::array();
    for (const CheckpointFile& file : info.files) {
      files.push_back({{"name", file.name},
                       {"role", file.role},
                       {"slot", file.slot},
                       {"shape", file.shape},
                       {"ok", file.ok},
                       {"error", file.error}});
    }
    nlohmann::json out = {{"name", info.name}, {"input_dim", info.input_dim}, {"output_dim", info.output_dim},
                          {"step", info.step}, {"optimizer", info.optimizer}, {"files", files},
                          {"ok", all_ok}};
    if (info.weights_ok) {
      out["row_norms"] = {{"min", info.row_norm_min},
                          {"mean", info.row_norm_mean},
                          {"max", info.row_norm_max},
                          {"zero_rows", info.zero_rows}};
    }
    // Paths are bytes, not always UTF-8 (an error names the directory): such bytes become U+FFFD,
    // so the report is valid JSON whatever the path; the text report prints them as they are.
    std::string report = out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    // The manifest goes in as written: inspect_checkpoint has read it with the library's guarded
    // parser (nesting, key and integer limits), which a second parse here would bypass, and it is
    // one JSON object. It becomes the report's last member, before the report's closing "\n}".
    const std::size_t begin = info.manifest_json.find_first_not_of(" \t\r\n");
    const std::size_t end = info.manifest_json.find_last_not_of(" \t\r\n");
    report.insert(report.size() - 2, ",\n  \"manifest\": " + info.manifest_json.substr(begin, end - begin + 1));
    std::printf("%s\n", report.c_str());
    return all_ok ? 0 : 1;
  }
  std::printf("checkpoint %s\n  table '%s': %lld x %lld, optimizer %s, step %lld\n", directory.c_str(),
              info.name.c_str(), static_cast<long long>(info.input_dim), static_cast<long long>(info.output_dim),
              info.optimizer.c_str(), static_cast<long long>(info.step));
  for (const CheckpointFile& file : info.files) {
    std::string shape;
    for (const std::int64_t extent : file.shape) shape += (shape.empty() ? "" : " x ") + std::to_string(extent);
    std::printf("  %-48s %-16s %-14s %s\n", file.name.c_str(),
                file.slot.empty() ? file.role.c_str() : file.slot.c_str(), shape.c_str(),
                file.ok ? "ok" : file.error.c_str());
  }
  if (info.weights_ok) {
    std::printf("  row norms: min %.4g, mean %.4g, max %.4g; rows all zeros: %lld\n", info.row_norm_min,
                info.row_norm_mean, info.row_norm_max, static_cast<long long>(info.zero_rows));
  }
  std::printf("%s\n", all_ok ? "all files check out" : "some files FAILED their checks");
  return all_ok ? 0 : 1;
}

}  // namespace embedkit::tools
