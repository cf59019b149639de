#include "placement/placement.hpp"

#include <embedkit/status.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace embedkit {

const char* to_string(PlacementReason reason) noexcept {
  switch (reason) {
    case PlacementReason::cpu_requested: return "cpu_requested";
    case PlacementReason::cuda_not_built: return "cuda_not_built";
    case PlacementReason::no_cuda_device: return "no_cuda_device";
    case PlacementReason::cuda_kernels_unverified: return "cuda_kernels_unverified";
    case PlacementReason::optimizer_has_no_cuda_kernel: return "optimizer_has_no_cuda_kernel";
    case PlacementReason::fits_on_device: return "fits_on_device";
    case PlacementReason::does_not_fit: return "does_not_fit";
    case PlacementReason::device_allocation_failed: return "device_allocation_failed";
    case PlacementReason::migrated: return "migrated";
    case PlacementReason::dtype_has_no_cuda_kernel: return "dtype_has_no_cuda_kernel";
  }
  return "unknown";
}

namespace detail {
namespace {

PlacementDecision decision(PlacementReason code, std::string reason, const PlacementInputs& inputs) {
  PlacementDecision d;
  d.reason_code = code;
  d.reason = std::move(reason);
  // Where the table goes decides how fast that work runs, so the sentence says it.
  if (inputs.dense_step) d.reason += "; " + dense_step_text(inputs.rows, inputs.dim);
  d.bytes = held_on(inputs.bytes, DeviceKind::cpu);  // the device branch below places it elsewhere
  if (inputs.device) d.device_free_bytes = inputs.device_memory.free_bytes;
  return d;
}

std::string needs_text(const PlacementInputs& inputs) {
  const ByteBreakdown& b = inputs.bytes;
  return fmt::format("needs {} (weights {} + {} state {} + workspace {})", short_bytes(b.total()),
                     short_bytes(b.weights), inputs.optimizer_name, short_bytes(b.optimizer_state),
                     short_bytes(b.workspace));
}

}  // namespace

ByteBreakdown bytes_as(ByteBreakdown bytes, DType from, DType to) {
  bytes.weights = bytes.weights / dtype_bytes(from) * dtype_bytes(to);
  return bytes;
}

ByteBreakdown held_on(ByteBreakdown bytes, DeviceKind device) {
  const std::uint64_t scratch = bytes.workspace + bytes.step_scratch;  // one of the two is 0
  bytes.workspace = device == DeviceKind::cpu ? 0 : scratch;
  bytes.step_scratch = device == DeviceKind::cpu ? scratch : 0;
  return bytes;
}

std::uint64_t train_workspace_bytes(std::int64_t lookups, std::int64_t dim) {
  // Per lookup: its staged id (8) and upstream gradient row (4·dim); the fold's workspace
  // (kernels/fold_workspace.hpp: four id arrays and two scans, 48, a piece sum row, 4·dim, and
  // CUB's sort scratch, about 16); at most one folded row (4·dim) with its id (8).
  const auto n = static_cast<std::uint64_t>(lookups), d = static_cast<std::uint64_t>(dim);
  return n * (80 + 12 * d);
}

PlacementPolicy effective_policy(PlacementPolicy configured, bool* from_environment) {
  *from_environment = false;
  const char* value = std::getenv("EMBEDKIT_DEVICE");
  if (value == nullptr || *value == '\0') return configured;
  const std::string_view text(value);
  *from_environment = true;
  if (text == "auto") return PlacementPolicy::automatic;
  if (text == "cpu") return PlacementPolicy::cpu;
  if (text == "cuda") return PlacementPolicy::cuda;
  throw Error(Status::invalid_argument, fmt::format("EMBEDKIT_DEVICE must be 'auto', 'cpu' or 'cuda', got '{}'", text));
}

PlacementDecision decide_placement(const PlacementInputs& inputs) {
  const char* source = inputs.policy_from_environment ? "EMBEDKIT_DEVICE" : "the config";
  if (inputs.policy == PlacementPolicy::cpu) {
    return decision(PlacementReason::cpu_requested, fmt::format("placement 'cpu' was requested by {}", source), inputs);
  }
  const bool forced = inputs.policy == PlacementPolicy::cuda;
  const auto refuse = [&](Status status, const std::string& why, const char* remedy) {
    throw Error(status, fmt::format("table '{}': placement 'cuda' was requested by {}, but {}; {}", inputs.table_name,
                                    source, why, remedy));
  };
  if (!inputs.device) {
    const PlacementReason code =
        inputs.built_with_cuda ? PlacementReason::no_cuda_device : PlacementReason::cuda_not_built;
    const std::string why =
        inputs.built_with_cuda
            ? (inputs.no_device_reason.empty() ? std::string("no CUDA device is present")
                                               : fmt::format("no CUDA device is usable ({})", inputs.no_device_reason))
            : std::string("this embedkit was built without CUDA");
    if (forced) {
      refuse(Status::unsupported, why,
             inputs.built_with_cuda ? "use placement 'auto' or 'cpu'"
                                    : "rebuild with -DEMBEDKIT_CUDA=ON, or use placement 'auto' or 'cpu'");
    }
    return decision(code, why, inputs);
  }
  if (!inputs.optimizer_has_cuda_kernel) {
    const std::string why = fmt::format("the {} optimizer has no sparse CUDA kernel", inputs.optimizer_name);
    if (forced) refuse(Status::unsupported, why, "use a built-in optimizer, or placement 'auto' or 'cpu'");
    return decision(PlacementReason::optimizer_has_no_cuda_kernel, why, inputs);
  }
  if (inputs.dtype != DType::float32 && !inputs.device->takes_narrow_rows) {
    const std::string why = fmt::format("{} has no kernels for {} rows (its kernels take float32)", inputs.device->name,
                                        to_string(inputs.dtype));
    if (forced) refuse(Status::unsupported, why, "use dtype 'float32', or placement 'auto' or 'cpu'");
    return decision(PlacementReason::dtype_has_no_cuda_kernel, why, inputs);
  }
  if (!inputs.device->kernels_verified) {
    const std::string why = fmt::format(
        "{} is usable, but embedkit's CUDA table kernels have not been verified on a "
        "GPU yet (set EMBEDKIT_CUDA_TABLES=1 to use them)",
        inputs.device->name);
    if (forced) refuse(Status::unsupported, why, "use placement 'auto' or 'cpu'");
    return decision(PlacementReason::cuda_kernels_unverified, why, inputs);
  }
  // Free memory already excludes what earlier tables allocated; only their promised workspace is
  // still to come out of it. The user's cap covers everything embedkit places.
  const MemoryInfo& memory = inputs.device_memory;
  const std::uint64_t headroom = inputs.headroom.value_or(memory.total_bytes / 10);
  const std::uint64_t taken = headroom + inputs.promised;
  std::uint64_t usable = memory.free_bytes > taken ? memory.free_bytes - taken : 0;
  std::string usable_text = fmt::format("{} free - {} headroom", short_bytes(memory.free_bytes), short_bytes(headroom));
  if (inputs.promised > 0) {
    usable_text += fmt::format(" - {} workspace promised to earlier tables", short_bytes(inputs.promised));
  }
  if (inputs.limit) {
    const std::uint64_t budget = *inputs.limit > inputs.ledger ? *inputs.limit - inputs.ledger : 0;
    if (budget < usable) {
      usable = budget;
      usable_text = fmt::format("gpu_memory_limit {}", short_bytes(*inputs.limit));
      if (inputs.ledger > 0) usable_text += fmt::format(" - {} placed by earlier tables", short_bytes(inputs.ledger));
    }
  }
  const bool fits = inputs.bytes.total() <= usable;
  std::string why =
      fmt::format("{}, {} usable {} ({})", needs_text(inputs), inputs.device->name, short_bytes(usable), usable_text);
  // Where the storage type decides it, say so: the same table in the other type would (not) fit.
  const DType other = inputs.dtype == DType::float32 ? DType::bfloat16 : DType::float32;
  const std::uint64_t other_total = bytes_as(inputs.bytes, inputs.dtype, other).total();
  if (fits != (other_total <= usable) && (other == DType::float32 || inputs.device->takes_narrow_rows)) {
    const DType fitting = fits ? inputs.dtype : other, failing = fits ? other : inputs.dtype;
    const std::uint64_t fitting_total = fits ? inputs.bytes.total() : other_total;
    const std::uint64_t failing_total = fits ? other_total : inputs.bytes.total();
    why += fmt::format("; fits on {} as {} ({}), not as {} ({})", inputs.device->name, to_string(fitting),
                       short_bytes(fitting_total), to_string(failing), short_bytes(failing_total));
  }
  if (!fits && forced) {
    refuse(Status::out_of_memory, "it does not fit: " + why,
           "raise gpu_memory_limit, lower max_batch_lookups, free device memory, or use placement 'auto' or 'cpu'");
  }
  PlacementDecision d = decision(fits ? PlacementReason::fits_on_device : PlacementReason::does_not_fit, why, inputs);
  d.device_usable_bytes = usable;
  if (fits) {
    d.device = DeviceKind::cuda;
    d.bytes = held_on(inputs.bytes, DeviceKind::cuda);
    d.device_label = inputs.device->name;
  }
  return d;
}

}  // namespace detail
}  // namespace embedkit
