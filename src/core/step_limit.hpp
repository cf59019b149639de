#pragma once
// How far a table's step count goes: one limit for train steps and for the steps checkpoints hold;
// and the 2^53 it derives from, which also bounds the sizes a plan request reads.

#include <embedkit/status.hpp>

#include "core/expects.hpp"

#include <fmt/format.h>

#include <cstdint>

namespace embedkit::detail {

/// 2^53: up to it every integer is exact as a double (JSON readers hold numbers as doubles).
inline constexpr std::int64_t kExactDoubleLimit = std::int64_t{1} << 53;

/// The last step a table takes: step counts stop at 2^53, where a count is still exact as a double
/// (JSON readers hold a manifest's numbers as doubles) and far from the int64 overflow no step may
/// wrap into; no training run comes near it. A checkpoint's step must be in [0, kMaxStep].
inline constexpr std::int64_t kMaxStep = kExactDoubleLimit;

/// `step` when it is in [0, kMaxStep], for the step a table or sharded checkpoint's manifest holds;
/// otherwise Error(invalid_argument) `step 9007199254740993 is not in [0, 9007199254740992]`, which
/// each manifest reader prefixes with its file.
inline std::int64_t checked_step(std::int64_t step) {
  EMBEDKIT_EXPECTS(step >= 0 && step <= kMaxStep, Status::invalid_argument, "step {} is not in [0, {}]", step,
                   kMaxStep);
  return step;
}

}  // namespace embedkit::detail
