// `embedkit plan --collection config.json`: where each table of a collection would go, decided
// together against one device budget, as TableCollection places them.
#include <embedkit/embedkit.hpp>

#include "plan_command.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>
#include <vector>

namespace embedkit::tools {
namespace {

PlanRequest request_of(const TableConfig& config) {
  PlanRequest request;
  request.rows = config.input_dim;
  request.dim = config.output_dim;
  request.optimizer = config.optimizer;
  request.max_batch_lookups = config.max_batch_lookups;
  request.gpu_memory_limit = config.gpu_memory_limit;
  request.gpu_memory_headroom = config.gpu_memory_headroom;
  return request;
}

}  // namespace

int run_collection_plan(const PlanOptions& options) {
  std::ifstream file(options.collection);
  if (!file) throw Error(Status::io_error, fmt::format("{}: cannot be read", options.collection));
  std::stringstream text;
  text << file.rdbuf();
  const CollectionConfig config = CollectionConfig::from_json(text.str());
  // The budget: the hypothetical device's, or what this machine's device has free (none: no device).
  std::optional<std::uint64_t> budget;
  if (!options.gpu_memory.empty()) {
    budget = parse_bytes(options.gpu_memory);
  } else {
    budget = plan_placement(request_of(config.tables[0].config)).device_free_bytes;
  }
  // As TableCollection: the smallest tables first, each planned against what the ones before left.
  std::vector<std::size_t> order(config.tables.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto size_of = [&](std::size_t t) {
    return static_cast<double>(config.tables[t].config.input_dim) *
           static_cast<double>(config.tables[t].config.output_dim);
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return size_of(a) < size_of(b); });
  std::vector<PlacementDecision> decisions(config.tables.size());
  std::uint64_t on_device = 0;
  for (const std::size_t t : order) {
    PlanRequest request = request_of(config.tables[t].config);
    if (budget) request.device_memory = *budget - std::min(*budget, on_device);
    if (config.tables[t].config.placement == PlacementPolicy::cpu) {
      request.device_memory = 0;  // its bytes, on no device
      decisions[t] = plan_placement(request);
      decisions[t].reason_code = PlacementReason::cpu_requested;
      decisions[t].reason = "placement 'cpu' was asked for";
      continue;
    }
    decisions[t] = plan_placement(request);
    if (decisions[t].device == DeviceKind::cuda) on_device += decisions[t].bytes.total();
  }
  if (options.json) {
    nlohmann::json tables = nlohmann::json::array();
    for (std::size_t t = 0; t < decisions.size(); ++t) {
      const PlacementDecision& decision = decisions[t];
      tables.push_back({{"name", config.tables[t].config.name},
                        {"rows", config.tables[t].config.input_dim},
                        {"dim", config.tables[t].config.output_dim},
                        {"device", decision.device == DeviceKind::cuda ? "cuda" : "cpu"},
                        {"reason_code", to_string(decision.reason_code)},
                        {"reason", decision.reason},
                        {"bytes", decision.bytes.total()}});
    }
    nlohmann::json report{{"tables", tables}, {"device_bytes", on_device}};
    if (budget) report["device_budget"] = *budget;
    std::printf("%s\n", report.dump(2).c_str());
    return 0;
  }
  std::printf("%-24s %14s %6s %6s %14s  %s\n", "table", "rows", "dim", "device", "bytes", "reason");
  for (std::size_t t = 0; t < decisions.size(); ++t) {
    const PlacementDecision& decision = decisions[t];
    std::printf("%-24s %14lld %6lld %6s %14llu  %s\n", config.tables[t].config.name.c_str(),
                static_cast<long long>(config.tables[t].config.input_dim),
                static_cast<long long>(config.tables[t].config.output_dim),
                decision.device == DeviceKind::cuda ? "cuda" : "cpu",
                static_cast<unsigned long long>(decision.bytes.total()), decision.reason.c_str());
  }
  if (budget) {
    std::printf("device: %llu of %llu bytes placed\n", static_cast<unsigned long long>(on_device),
                static_cast<unsigned long long>(*budget));
  } else {
    std::printf("device: none (every table on the CPU)\n");
  }
  return 0;
}

}  // namespace embedkit::tools
