#pragma once
// C++17, host and device. One optimizer step as every backend takes it: the rule every updated row
// gets (StepRule, built once by the table from its config and step count) and the arrays it
// updates (RowStep). The CPU loops and the CUDA kernels read the same struct, so a step means the
// same thing on each, with no per-backend converter.

#include <embedkit/config.hpp>
#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/optimizer.hpp>

#include <cstdint>

namespace embedkit::detail {

/// What one step does to every row it updates.
struct StepRule {
  OptimizerKind kind = OptimizerKind::sgd;  // a built-in kind
  StepScalars scalars;
  ConstraintKind constraint = ConstraintKind::none;  // applied after the update
  float max_value = 0.0f;                            // max_norm's, in float as the step computes
  // A row whose update fails detail::keeps_update is left as it was (the skip and error policies):
  // its update is judged, across the whole row, before any of it is written. False: the apply policy.
  bool judge_results = false;
};

/// The arrays a step updates, with its rule.
struct RowStep {
  float* weights = nullptr;  // (input_dim, dim)
  float* slot0 = nullptr;    // the optimizer's first state array, laid out as its descriptor says
  float* slot1 = nullptr;    // its second
  std::int64_t dim = 0;
  StepRule rule;
};

}  // namespace embedkit::detail
