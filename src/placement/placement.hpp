#pragma once
// The placement decision: which backend a new table lives on, and the sentence that says why.

#include <embedkit/config.hpp>
#include <embedkit/placement.hpp>

#include "backend/backend.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace embedkit::detail {

/// What the decision needs to know of a device.
struct DeviceFacts {
  std::string name;                // "cuda:0", "sim:0"
  bool kernels_verified = false;   // its table kernels may be trusted (BackendCapabilities)
  bool takes_narrow_rows = false;  // it runs float16 and bfloat16 tables (BackendCapabilities)
};

/// Everything the decision depends on.
struct PlacementInputs {
  std::string table_name;
  PlacementPolicy policy = PlacementPolicy::automatic;
  bool policy_from_environment = false;  // EMBEDKIT_DEVICE set it
  ByteBreakdown bytes;                   // what the table needs wherever it goes
  DType dtype = DType::float32;          // the rows' storage type, which `bytes` counts
  std::string optimizer_name;
  bool optimizer_has_cuda_kernel = true;
  bool built_with_cuda = false;
  std::optional<DeviceFacts> device;      // the context's device; none when there is none
  std::string no_device_reason;           // the runtime's words when there is none
  MemoryInfo device_memory;               // read from `device`
  std::optional<std::uint64_t> limit;     // gpu_memory_limit
  std::optional<std::uint64_t> headroom;  // gpu_memory_headroom; default 10% of the device's total
  std::uint64_t ledger = 0;               // bytes earlier tables of the context need there (the budget's share)
  std::uint64_t promised = 0;             // of those, workspace not allocated now, so not yet out of `free`
  std::int64_t rows = 0;                  // input_dim
  std::int64_t dim = 0;                   // output_dim
  bool dense_step = false;                // each step updates every row (updates_every_row)
};

/// Decides where the table goes. Under policy `cuda`, a device this build or machine cannot give,
/// an optimizer without a sparse CUDA kernel, or a table that does not fit throws Error
/// (unsupported, or out_of_memory for the last) saying what to change.
PlacementDecision decide_placement(const PlacementInputs& inputs);

/// The policy in force: EMBEDKIT_DEVICE (auto|cpu|cuda) when set, else the config's.
/// Throws Error(invalid_argument) for another value of the variable.
PlacementPolicy effective_policy(PlacementPolicy configured, bool* from_environment);

/// Workspace bytes a train step of `lookups` ids of `dim` floats needs on a device: the staged
/// ids and upstream gradient, the sort's keys, and the folded rows.
std::uint64_t train_workspace_bytes(std::int64_t lookups, std::int64_t dim);

/// `bytes` of a table stored as `from` for the same table stored as `to` (only the weights change).
ByteBreakdown bytes_as(ByteBreakdown bytes, DType from, DType to);

/// `bytes` as a table on `device` holds them: a device table keeps its train-step scratch between
/// calls (workspace); a CPU table's steps allocate it per call (step_scratch).
ByteBreakdown held_on(ByteBreakdown bytes, DeviceKind device);

/// "74.9 GiB", "12.2 MiB", "512 bytes": short human units for log lines and reasons (summary.cpp).
std::string short_bytes(std::uint64_t bytes);

/// "every train step updates all 1,000,000 rows (lazy: false, Keras's semantics): O(input_dim x dim) =
/// 64,000,000 weights a step": the cost a dense step adds, in the placement reason and the summary.
std::string dense_step_text(std::int64_t rows, std::int64_t dim);

/// "up to 212.0 MiB per train step, allocated per call (not held)": a CPU table's step scratch.
std::string step_scratch_text(std::uint64_t bytes);

}  // namespace embedkit::detail
