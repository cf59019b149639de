#include "placement/placement_inputs.hpp"

#include <embedkit/detail/renorm_math.hpp>
#include <embedkit/status.hpp>

#include "config/optimizer_rules.hpp"
#include "config/optimizer_state.hpp"

#include <fmt/format.h>

namespace embedkit::detail {

ByteBreakdown table_bytes(const TableConfig& config) {
  std::uint64_t weights = 0;
  const bool overflow =
      __builtin_mul_overflow(static_cast<std::uint64_t>(config.input_dim),
                             static_cast<std::uint64_t>(config.output_dim) * dtype_bytes(config.dtype), &weights);
  if (overflow) {
    throw Error(Status::out_of_memory,
                fmt::format("table '{}' of {} x {} {} weights needs more bytes than memory can address", config.name,
                            config.input_dim, config.output_dim, to_string(config.dtype)));
  }
  ByteBreakdown bytes;
  bytes.weights = weights;
  bytes.optimizer_state = detail::optimizer_state_bytes(config.optimizer, config.input_dim, config.output_dim);
  // max_batch_lookups may be any positive int64: the workspace (linear in it) and the total are
  // computed checked, so that no byte count anywhere wraps around.
  const std::uint64_t per_lookup = detail::train_workspace_bytes(1, config.output_dim);
  std::uint64_t total = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(config.max_batch_lookups), per_lookup, &bytes.workspace) ||
      __builtin_add_overflow(bytes.weights, bytes.optimizer_state, &total) ||
      __builtin_add_overflow(total, bytes.workspace, &total)) {
    throw Error(Status::out_of_memory,
                fmt::format("table '{}' of {} x {} {} weights with max_batch_lookups {} needs more bytes than "
                            "memory can address",
                            config.name, config.input_dim, config.output_dim, to_string(config.dtype),
                            config.max_batch_lookups));
  }
  // Under max_norm a device lookup first marks its rows in a bitmap kept in the same workspace.
  if (config.max_norm) {
    const auto claims =
        static_cast<std::uint64_t>(detail::renorm_claim_words(config.input_dim)) * sizeof(std::uint32_t);
    if (claims > bytes.workspace) bytes.workspace = claims;  // smaller than the weights: no overflow
  }
  return bytes;
}

PlacementInputs placement_inputs(const TableConfig& config, Context::Impl& context) {
  PlacementInputs inputs;
  inputs.table_name = config.name;
  inputs.policy = effective_policy(config.placement, &inputs.policy_from_environment);
  inputs.bytes = table_bytes(config);
  inputs.dtype = config.dtype;
  inputs.optimizer_name = to_string(config.optimizer.kind);
  inputs.optimizer_has_cuda_kernel = config.optimizer.has_cuda_kernel();
  inputs.rows = config.input_dim;
  inputs.dim = config.output_dim;
  inputs.dense_step = detail::updates_every_row(config);
  inputs.built_with_cuda = context.built_with_cuda;
  inputs.no_device_reason = context.no_device_reason;
  if (context.device) {
    const BackendCapabilities capabilities = context.device->capabilities();
    inputs.device = DeviceFacts{context.device->name(), capabilities.kernels_verified, capabilities.narrow_rows};
    inputs.device_memory = context.device->memory_info();
  }
  inputs.limit = config.gpu_memory_limit;
  inputs.headroom = config.gpu_memory_headroom;
  inputs.ledger = context.ledger();
  inputs.promised = context.promised();
  return inputs;
}

}  // namespace embedkit::detail
