// Placement planning without a table: `embedkit plan` and PlanRequest.
#include <embedkit/plan.hpp>
#include <embedkit/status.hpp>

#include "dispatch/placement_inputs.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <string>

namespace embedkit {

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
  if (end == 0 || scale == 0 || !(bytes >= 0) || bytes > 1.8e19) {
    throw Error(Status::invalid_argument,
                fmt::format("'{}' is not a size (e.g. 80GiB, 512MiB, 1.5TB, or bytes)", text));
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
  config.optimizer = request.optimizer;
  config.max_batch_lookups = request.max_batch_lookups;
  config.gpu_memory_limit = request.gpu_memory_limit;
  config.gpu_memory_headroom = request.gpu_memory_headroom;
  config.validate();
  detail::PlacementInputs inputs = detail::placement_inputs(config, context.impl());
  if (request.device_memory) {  // a device of that size, empty, with the kernels it would need
    inputs.built_with_cuda = true;
    inputs.device = detail::DeviceFacts{"cuda:0 (hypothetical)", true};
    inputs.device_memory = {*request.device_memory, *request.device_memory};
    inputs.ledger = 0;
    inputs.promised = 0;
  }
  return detail::decide_placement(inputs);
}

}  // namespace embedkit
