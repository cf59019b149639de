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
  cuda_kernels_unverified,       ///< A device is usable, but the CUDA table kernels have not passed the GPU suite
                                 ///< on real hardware yet, so auto placement keeps tables off it
                                 ///< (EMBEDKIT_CUDA_TABLES=1 opens it).
  optimizer_has_no_cuda_kernel,  ///< The optimizer is a host callback: it only runs on the CPU.
  fits_on_device,                ///< The table fits the device's usable memory: placed there.
  does_not_fit,                  ///< The table needs more than the device's usable memory.
  device_allocation_failed,      ///< It should have fit, but allocating on the device failed.
  migrated,                      ///< Moved by migrate().
  dtype_has_no_cuda_kernel,      ///< The CUDA kernels take float32 rows only: a float16 or bfloat16 table
                                 ///< stays on the CPU.
  /// @deprecated The name before 0.2 for cuda_kernels_unverified, which reports now print.
  cuda_backend_not_implemented [[deprecated("use cuda_kernels_unverified")]] = cuda_kernels_unverified,
};

/// @brief Bytes a table holds, by purpose.
struct ByteBreakdown {
  std::uint64_t weights = 0;          ///< input_dim × output_dim × the storage type's bytes (4 or 2).
  std::uint64_t optimizer_state = 0;  ///< Slots of the optimizer (none until training exists).
  std::uint64_t workspace = 0;        ///< Train-step scratch kept between calls (a device table's).
  /// Train-step scratch a CPU table allocates in each step and frees after it: the most a step of
  /// max_batch_lookups ids takes. Not held, so not in total().
  std::uint64_t step_scratch = 0;
  /// Bytes held between calls.
  std::uint64_t total() const noexcept { return weights + optimizer_state + workspace; }
};

/// @brief The decision taken once, at the table's creation, and why.
struct PlacementDecision {
  DeviceKind device = DeviceKind::cpu;
  PlacementReason reason_code = PlacementReason::cpu_requested;
  std::string reason;                                ///< One sentence a person can act on.
  ByteBreakdown bytes;                               ///< What the table needs where it was placed.
  std::optional<std::uint64_t> device_free_bytes;    ///< Free device memory seen, when a device was probed.
  std::optional<std::uint64_t> device_usable_bytes;  ///< What this table could have used there.
  std::string device_label = "cpu";                  ///< Its backend's name: "cpu", "cuda:0", "sim:0".

  /// @brief "cpu", "cuda:N" (or a simulated device's name in tests).
  std::string device_name() const { return device_label; }
};

/// @brief The snake_case name of a reason code, e.g. "cuda_not_built".
EMBEDKIT_API const char* to_string(PlacementReason reason) noexcept;

}  // namespace embedkit
