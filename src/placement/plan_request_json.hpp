#pragma once
// A PlanRequest read from JSON, for the C ABI's ek_plan.

#include <embedkit/plan.hpp>

#include <string_view>

namespace embedkit::detail {

/// Reads {"rows", "dim" (required), "optimizer" (a name or a Keras object), "max_batch_lookups",
/// "gpu_memory" (a hypothetical device's free memory: bytes or a size such as "80GiB"),
/// "gpu_memory_limit", "gpu_memory_headroom"}. Error(invalid_argument) naming a bad or unknown key.
PlanRequest plan_request_from_json(std::string_view json);

}  // namespace embedkit::detail
