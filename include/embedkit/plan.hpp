#pragma once
/// @file plan.hpp
/// @brief What placement would decide for a table, without creating it (`embedkit plan`).

#include <embedkit/context.hpp>
#include <embedkit/dtype.hpp>
#include <embedkit/export.h>
#include <embedkit/optimizer.hpp>
#include <embedkit/placement.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace embedkit {

/// @brief A table to plan for, and optionally a hypothetical device.
struct PlanRequest {
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  DType dtype = DType::float32;  ///< the rows' storage type (float16 and bfloat16 halve the weights)
  OptimizerConfig optimizer = OptimizerConfig::defaults(OptimizerKind::sgd);
  std::int64_t max_batch_lookups = 1 << 18;
  std::optional<std::uint64_t> device_memory;  ///< a device of this many free bytes instead of this machine's
  std::optional<std::uint64_t> gpu_memory_limit;
  std::optional<std::uint64_t> gpu_memory_headroom;
};

/// @brief The decision a table of `request` would get, with its reason and byte breakdown. With
/// device_memory, the device is a hypothetical one with that much memory free (and the CUDA
/// kernels it would need); without, it is `context`'s device.
/// @throws Error(invalid_argument) for rows or dim that are not positive.
EMBEDKIT_API PlacementDecision plan_placement(const PlanRequest& request,
                                              Context& context = Context::default_context());

/// @brief What `embedkit plan` prints for `request` and its `decision`: the byte breakdown and the
/// decision as lines of text, or (json) one JSON object with device, reason_code, reason, bytes and
/// the device's free and usable bytes when a device was probed. Ends with a newline.
EMBEDKIT_API std::string plan_report(const PlanRequest& request, const PlacementDecision& decision, bool json);

/// @brief Parses "80GiB", "512MiB", "1.5TB", "4096" (bytes) into bytes, at most 2^53 - 1 (just
/// under 8 PiB), the largest size every byte count up to which a double holds exactly.
/// @throws Error(invalid_argument) naming the text: not a size, or a larger one.
EMBEDKIT_API std::uint64_t parse_bytes(std::string_view text);

}  // namespace embedkit
