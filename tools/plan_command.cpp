#include "plan_command.hpp"

#include <embedkit/embedkit.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>

namespace embedkit::tools {

int run_plan(const PlanOptions& options) {
  if (options.ranks > 0) return run_sharded_plan(options);
  PlanRequest request;
  request.rows = options.rows;
  request.dim = options.dim;
  request.optimizer = OptimizerConfig::from_json(nlohmann::json(options.optimizer).dump());
  request.max_batch_lookups = options.batch;
  if (!options.gpu_memory.empty()) request.device_memory = parse_bytes(options.gpu_memory);
  const PlacementDecision decision = plan_placement(request);
  const ByteBreakdown& bytes = decision.bytes;
  if (options.json) {
    nlohmann::json out = {{"device", decision.device_name()},
                          {"reason_code", to_string(decision.reason_code)},
                          {"reason", decision.reason},
                          {"bytes",
                           {{"weights", bytes.weights},
                            {"optimizer_state", bytes.optimizer_state},
                            {"workspace", bytes.workspace},
                            {"total", bytes.total()}}}};
    if (decision.device_free_bytes) out["device_free_bytes"] = *decision.device_free_bytes;
    if (decision.device_usable_bytes) out["device_usable_bytes"] = *decision.device_usable_bytes;
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("table of %lld x %lld, %s, batches up to %lld lookups\n", static_cast<long long>(options.rows),
              static_cast<long long>(options.dim), options.optimizer.c_str(), static_cast<long long>(options.batch));
  std::printf("  weights          %s\n", format_bytes(bytes.weights).c_str());
  std::printf("  optimizer state  %s\n", format_bytes(bytes.optimizer_state).c_str());
  std::printf("  workspace        %s\n", format_bytes(bytes.workspace).c_str());
  std::printf("  total            %s\n", format_bytes(bytes.total()).c_str());
  if (decision.device_free_bytes) std::printf("  device free      %s\n", format_bytes(*decision.device_free_bytes).c_str());
  if (decision.device_usable_bytes) {
    std::printf("  device usable    %s (after headroom)\n", format_bytes(*decision.device_usable_bytes).c_str());
  }
  std::printf("placement: %s (%s)\n  %s\n", decision.device_name().c_str(), to_string(decision.reason_code),
              decision.reason.c_str());
  return 0;
}

}  // namespace embedkit::tools
