// Placement planning without a table: `embedkit plan` and PlanRequest.
#include <embedkit/plan.hpp>
#include <embedkit/status.hpp>

#include "context_impl.hpp"
#include "dispatch/placement.hpp"
#include "optimizer_state.hpp"

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
  request.optimizer.validate();
  const auto rows = static_cast<std::uint64_t>(request.rows), dim = static_cast<std::uint64_t>(request.dim);
  detail::PlacementInputs inputs;
  inputs.table_name = "planned";
  inputs.bytes.weights = rows * dim * sizeof(float);
  inputs.bytes.optimizer_state = detail::optimizer_state_bytes(request.optimizer, request.rows, request.dim);
  inputs.bytes.workspace = detail::train_workspace_bytes(request.max_batch_lookups, request.dim);
  inputs.optimizer_name = to_string(request.optimizer.kind);
  inputs.optimizer_has_cuda_kernel = request.optimizer.has_cuda_kernel();
  inputs.limit = request.gpu_memory_limit;
  inputs.headroom = request.gpu_memory_headroom;
  Context::Impl& ctx = context.impl();
  if (request.device_memory) {
    inputs.built_with_cuda = true;
    inputs.device = detail::DeviceFacts{"cuda:0 (hypothetical)", true};
    inputs.device_memory = {*request.device_memory, *request.device_memory};
  } else {
    inputs.built_with_cuda = ctx.built_with_cuda;
    inputs.no_device_reason = ctx.no_device_reason;
    if (ctx.device) {
      inputs.device = detail::DeviceFacts{ctx.device->name(), ctx.device->runs_table_ops()};
      inputs.device_memory = ctx.device->memory_info();
      inputs.ledger = ctx.ledger();
      inputs.promised = ctx.promised();
    }
  }
  return detail::decide_placement(inputs);
}

}  // namespace embedkit
