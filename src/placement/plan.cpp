// Placement planning without a table: `embedkit plan` and PlanRequest.
#include <embedkit/plan.hpp>
#include <embedkit/status.hpp>
#include <embedkit/summary.hpp>

#include "config/config_json.hpp"
#include "config/json_document.hpp"
#include "config/json_fields.hpp"
#include "config/keras_objects.hpp"
#include "core/step_limit.hpp"
#include "placement/placement_inputs.hpp"
#include "placement/plan_request_json.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <string>

namespace embedkit {
namespace {

// The largest size a plan reads, as a string or as a JSON integer alike: every size up to it is exact
// as a double, which strings pass through and JSON readers may hold numbers as.
constexpr std::int64_t kLargestExact = detail::kExactDoubleLimit - 1;

}  // namespace

std::uint64_t parse_bytes(std::string_view text) {
  std::size_t end = 0;
  double number = 0;
  const std::string copy(text);
  try {
    number = std::stod(copy, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  std::string unit = copy.substr(end);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  if (unit == "kib" || unit == "k") scale = 1024.0;
  if (unit == "mib" || unit == "m") scale = 1024.0 * 1024;
  if (unit == "gib" || unit == "g") scale = 1024.0 * 1024 * 1024;
  if (unit == "tib" || unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
  if (unit == "kb") scale = 1e3;
  if (unit == "mb") scale = 1e6;
  if (unit == "gb") scale = 1e9;
  if (unit == "tb") scale = 1e12;
  const double bytes = number * scale;
  if (end == 0 || scale == 0 || !(bytes >= 0)) {
    throw Error(Status::invalid_argument,
                fmt::format("'{}' is not a size (e.g. 80GiB, 512MiB, 1.5TB, or bytes)", text));
  }
  // The size passes through a double: above 2^53 - 1 not every byte count is one, so the size used
  // would not be the size written (and "1e19" would not even fit the llround below).
  if (bytes > static_cast<double>(kLargestExact)) {
    throw Error(Status::invalid_argument,
                fmt::format("'{}' is more than {} bytes, the largest size read exactly", text, kLargestExact));
  }
  return static_cast<std::uint64_t>(std::llround(bytes));
}

PlacementDecision plan_placement(const PlanRequest& request, Context& context) {
  if (request.rows <= 0 || request.dim <= 0) {
    throw Error(Status::invalid_argument,
                fmt::format("rows and dim must be positive integers, got {} and {}", request.rows, request.dim));
  }
  // The table it would be, so its bytes and policy are exactly a real table's.
  TableConfig config;
  config.name = "planned";
  config.input_dim = request.rows;
  config.output_dim = request.dim;
  config.dtype = request.dtype;
  config.optimizer = request.optimizer;
  config.max_batch_lookups = request.max_batch_lookups;
  config.gpu_memory_limit = request.gpu_memory_limit;
  config.gpu_memory_headroom = request.gpu_memory_headroom;
  config.validate();
  detail::PlacementInputs inputs = detail::placement_inputs(config, context.impl());
  if (request.device_memory) {  // a device of that size, empty, with the kernels it would need
    inputs.built_with_cuda = true;
    // Verified kernels, as a GPU run would make them; float32 rows only, as this build's kernels are.
    inputs.device = detail::DeviceFacts{"cuda:0 (hypothetical)", true, false};
    inputs.device_memory = {*request.device_memory, *request.device_memory};
    inputs.ledger = 0;
    inputs.promised = 0;
  }
  return detail::decide_placement(inputs);
}

std::string plan_report(const PlanRequest& request, const PlacementDecision& decision, bool json) {
  const ByteBreakdown& bytes = decision.bytes;
  if (json) {
    nlohmann::json out = {{"device", decision.device_name()},
                          {"reason_code", to_string(decision.reason_code)},
                          {"reason", decision.reason},
                          {"bytes",
                           {{"weights", bytes.weights},
                            {"optimizer_state", bytes.optimizer_state},
                            {"workspace", bytes.workspace},
                            {"step_scratch", bytes.step_scratch},
                            {"total", bytes.total()}}}};
    if (decision.device_free_bytes) out["device_free_bytes"] = *decision.device_free_bytes;
    if (decision.device_usable_bytes) out["device_usable_bytes"] = *decision.device_usable_bytes;
    return out.dump(2) + "\n";
  }
  // The type is named when it is not float32, the default.
  const std::string type = request.dtype == DType::float32 ? "" : std::string(" ") + to_string(request.dtype);
  std::string text = fmt::format("table of {} x {}{}, {}, batches up to {} lookups\n", request.rows, request.dim, type,
                                 to_string(request.optimizer.kind), request.max_batch_lookups);
  const auto line = [&text](std::string_view label, const std::string& value) {
    text.append(fmt::format("  {:<17}{}\n", label, value));
  };
  line("weights", format_bytes(bytes.weights));
  line("optimizer state", format_bytes(bytes.optimizer_state));
  line("workspace", format_bytes(bytes.workspace));
  if (bytes.step_scratch > 0) line("step scratch", detail::step_scratch_text(bytes.step_scratch));
  line("total", format_bytes(bytes.total()));
  if (decision.device_free_bytes) line("device free", format_bytes(*decision.device_free_bytes));
  if (decision.device_usable_bytes)
    line("device usable", format_bytes(*decision.device_usable_bytes) + " (after headroom)");
  text.append(fmt::format("placement: {} ({})\n  {}\n", decision.device_name(), to_string(decision.reason_code),
                          decision.reason));
  return text;
}

namespace detail {

PlanRequest plan_request_from_json(std::string_view json) {
  const nlohmann::json document = parse_json_document(json, "plan request", Status::invalid_argument);
  if (!document.is_object()) {
    throw Error(Status::invalid_argument,
                fmt::format("plan request must be a JSON object, got {}", json_repr(document)));
  }
  PlanRequest request;
  const auto bytes = [](const nlohmann::json& value, std::string_view key) {
    if (value.is_string()) return parse_bytes(value.get<std::string>());
    const std::uint64_t size = non_negative_integer(value, key);
    if (size > static_cast<std::uint64_t>(kLargestExact)) {
      throw Error(Status::invalid_argument,
                  fmt::format("{} {} is more than {} bytes, the largest size read exactly", key, size, kLargestExact));
    }
    return size;
  };
  for (const auto& [key, value] : document.items()) {
    if (key == "rows") {
      request.rows = positive_integer(value, key);
    } else if (key == "dim") {
      request.dim = positive_integer(value, key);
    } else if (key == "optimizer") {
      request.optimizer = optimizer_from_json(value);
    } else if (key == "dtype") {
      request.dtype = dtype_from_policy(value);
    } else if (key == "max_batch_lookups") {
      request.max_batch_lookups = positive_integer(value, key);
    } else if (key == "gpu_memory") {
      if (!value.is_null()) request.device_memory = bytes(value, key);
    } else if (key == "gpu_memory_limit") {
      if (!value.is_null()) request.gpu_memory_limit = bytes(value, key);
    } else if (key == "gpu_memory_headroom") {
      if (!value.is_null()) request.gpu_memory_headroom = bytes(value, key);
    } else {
      throw Error(Status::invalid_argument, fmt::format("unknown plan request key '{}'", key));
    }
  }
  if (request.rows == 0) throw Error(Status::invalid_argument, "plan request is missing the required key 'rows'");
  if (request.dim == 0) throw Error(Status::invalid_argument, "plan request is missing the required key 'dim'");
  return request;
}

}  // namespace detail

}  // namespace embedkit
