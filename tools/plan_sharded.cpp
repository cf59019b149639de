#include <embedkit/embedkit.hpp>

#include "plan_command.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace embedkit::tools {
namespace {

std::string rows_text(const ShardRows& rows, int ranks) {
  if (rows.stride == 1) return std::to_string(rows.first) + " .. " + std::to_string(rows.first + rows.count - 1);
  return "id % " + std::to_string(ranks) + " == " + std::to_string(rows.first);
}

// "5.96 GiB": short enough for a column (format_bytes adds the exact count).
std::string short_bytes(std::uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 5) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.2f %s", value, units[unit]);
  return text;
}

}  // namespace

int run_sharded_plan(const PlanOptions& options) {
  const RowSplit split = parse_row_split(options.split);
  const std::vector<ShardRows> shards = split_rows(options.rows, options.ranks, split);
  // Each rank's shard is an ordinary table placed on its own machine's device; an owner's
  // workspace holds every rank's batch arriving at once, as the sharded table sizes it.
  PlanRequest request;
  request.dim = options.dim;
  request.optimizer = OptimizerConfig::from_json(nlohmann::json(options.optimizer).dump());
  request.max_batch_lookups =
      std::min<std::int64_t>(options.batch, std::numeric_limits<std::int64_t>::max() / options.ranks) * options.ranks;
  if (!options.gpu_memory.empty()) request.device_memory = parse_bytes(options.gpu_memory);
  std::vector<PlacementDecision> decisions;
  for (const ShardRows& shard : shards) {
    request.rows = shard.count;
    decisions.push_back(plan_placement(request));
  }
  if (options.json) {
    nlohmann::json ranks = nlohmann::json::array();
    for (std::size_t r = 0; r < shards.size(); ++r) {
      const ByteBreakdown& bytes = decisions[r].bytes;
      ranks.push_back({{"rank", shards[r].rank},
                       {"first", shards[r].first},
                       {"stride", shards[r].stride},
                       {"rows", shards[r].count},
                       {"device", decisions[r].device_name()},
                       {"reason_code", to_string(decisions[r].reason_code)},
                       {"bytes",
                        {{"weights", bytes.weights},
                         {"optimizer_state", bytes.optimizer_state},
                         {"workspace", bytes.workspace},
                         {"step_scratch", bytes.step_scratch},
                         {"total", bytes.total()}}}});
    }
    const nlohmann::json out = {{"rows", options.rows},
                                {"dim", options.dim},
                                {"split", to_string(split)},
                                {"world_size", options.ranks},
                                {"ranks", ranks}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("table of %lld x %lld, %s, split over %d ranks (%s), batches up to %lld lookups per rank\n",
              static_cast<long long>(options.rows), static_cast<long long>(options.dim), options.optimizer.c_str(),
              options.ranks, to_string(split), static_cast<long long>(options.batch));
  std::printf("  %-5s %-24s %12s %11s %16s %11s %13s %11s  %s\n", "rank", "rows", "count", "weights", "optimizer state",
              "workspace", "step scratch", "total", "placement");
  for (std::size_t r = 0; r < shards.size(); ++r) {
    const ByteBreakdown& bytes = decisions[r].bytes;
    std::printf("  %-5d %-24s %12lld %11s %16s %11s %13s %11s  %s\n", shards[r].rank,
                rows_text(shards[r], options.ranks).c_str(), static_cast<long long>(shards[r].count),
                short_bytes(bytes.weights).c_str(), short_bytes(bytes.optimizer_state).c_str(),
                short_bytes(bytes.workspace).c_str(), short_bytes(bytes.step_scratch).c_str(),
                short_bytes(bytes.total()).c_str(), decisions[r].device_name().c_str());
  }
  std::uint64_t total = 0;
  for (const PlacementDecision& decision : decisions) total += decision.bytes.weights + decision.bytes.optimizer_state;
  std::printf(
      "weights and state on all ranks: %s; each owner's workspace (device) or step scratch (CPU, per call) holds "
      "every rank's batch at once "
      "(%d x %lld lookups)\n",
      short_bytes(total).c_str(), options.ranks, static_cast<long long>(options.batch));
  return 0;
}

}  // namespace embedkit::tools
