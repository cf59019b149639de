#include "plan_command.hpp"

#include <embedkit/embedkit.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>

namespace embedkit::tools {

int run_plan(const PlanOptions& options) {
  if (!options.collection.empty()) return run_collection_plan(options);
  if (options.rows <= 0 || options.dim <= 0) {
    throw Error(Status::invalid_argument, "plan needs --rows and --dim (or --collection)");
  }
  if (options.ranks > 0) return run_sharded_plan(options);
  PlanRequest request;
  request.rows = options.rows;
  request.dim = options.dim;
  request.optimizer = OptimizerConfig::from_json(nlohmann::json(options.optimizer).dump());
  request.max_batch_lookups = options.batch;
  request.dtype = options.dtype == "float16"    ? DType::float16
                  : options.dtype == "bfloat16" ? DType::bfloat16
                                                : DType::float32;
  if (!options.gpu_memory.empty()) request.device_memory = parse_bytes(options.gpu_memory);
  const PlacementDecision decision = plan_placement(request);
  std::fputs(plan_report(request, decision, options.json).c_str(), stdout);
  return 0;
}

}  // namespace embedkit::tools
