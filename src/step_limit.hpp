#pragma once
// How far a table's step count goes: one limit for train steps and for the steps checkpoints hold.

#include <cstdint>

namespace embedkit::detail {

/// The last step a table takes: step counts stop at 2^53, where a count is still exact as a double
/// (JSON readers hold a manifest's numbers as doubles) and far from the int64 overflow no step may
/// wrap into; no training run comes near it. A checkpoint's step must be in [0, kMaxStep].
inline constexpr std::int64_t kMaxStep = std::int64_t{1} << 53;

}  // namespace embedkit::detail
