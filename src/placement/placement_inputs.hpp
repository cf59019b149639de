#pragma once
// What a table of a given config asks of placement, read from its config and its context: one
// place for the table's creation, migrate() and plan_placement().

#include <embedkit/config.hpp>

#include "placement/context_impl.hpp"
#include "placement/placement.hpp"

namespace embedkit::detail {

/// Weights + optimizer state + the workspace of max_batch_lookups. Throws Error(out_of_memory)
/// when that overflows.
ByteBreakdown table_bytes(const TableConfig& config);

/// The inputs of decide_placement for `config` on `context`'s device (its memory and ledger read
/// now), under the config's policy or EMBEDKIT_DEVICE.
PlacementInputs placement_inputs(const TableConfig& config, Context::Impl& context);

}  // namespace embedkit::detail
