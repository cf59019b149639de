#pragma once
/// @file placement.hpp
/// @brief Where a table lives and why: the placement decision record.

#include <embedkit/export.h>

#include <cstdint>
#include <optional>
#include <string>

namespace embedkit {

/// @brief Kind of memory a table lives in.
enum class DeviceKind { cpu, cuda };

/// @brief Why the table lives where it does.
enum class PlacementReason {
  cpu_requested,                 ///< The config or EMBEDKIT_DEVICE asked for the CPU.
  cuda_not_built,                ///< This library was built without CUDA.
  no_cuda_device,                ///< Built with CUDA, but no device is usable (driver or count).
  cuda_backend_not_implemented,  ///< A device is usable, but this version keeps tables on the CPU.
};

/// @brief Bytes a table holds, by purpose.
struct ByteBreakdown {
  std::uint64_t weights = 0;          ///< input_dim × output_dim × 4.
  std::uint64_t optimizer_state = 0;  ///< Slots of the optimizer (none until training exists).
  std::uint64_t workspace = 0;        ///< Scratch kept between calls.
  std::uint64_t total() const noexcept { return weights + optimizer_state + workspace; }
};

/// @brief The decision taken once, at the table's creation, and why.
struct PlacementDecision {
  DeviceKind device = DeviceKind::cpu;
  int device_index = 0;             ///< The CUDA ordinal; 0 for the CPU.
  PlacementReason reason_code = PlacementReason::cpu_requested;
  std::string reason;               ///< One sentence a person can act on.
  ByteBreakdown bytes;              ///< What the table needs where it was placed.
  std::optional<std::uint64_t> device_free_bytes;  ///< Free device memory seen, when a device was probed.

  /// @brief "cpu" or "cuda:N".
  std::string device_name() const {
    return device == DeviceKind::cpu ? std::string("cpu") : "cuda:" + std::to_string(device_index);
  }
};

/// @brief The snake_case name of a reason code, e.g. "cuda_not_built".
EMBEDKIT_API const char* to_string(PlacementReason reason) noexcept;

}  // namespace embedkit
