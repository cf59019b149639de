#pragma once
// The placement decision: which device a new table lives on, and the sentence that says why.

#include <embedkit/config.hpp>
#include <embedkit/placement.hpp>

#include "device_probe.hpp"

#include <string_view>

namespace embedkit::detail {

/// Decides where a table of `bytes` goes under `policy`, given what `probe` found.
/// Throws Error(unsupported) when the policy forces a device this build or machine cannot give,
/// with a message that says what to change.
PlacementDecision decide_placement(PlacementPolicy policy, const ByteBreakdown& bytes,
                                   const CudaProbe& probe);

}  // namespace embedkit::detail
