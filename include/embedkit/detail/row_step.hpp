#pragma once
// C++17, host and device. One optimizer step as every backend takes it: the rule every updated row
// gets (StepRule, built once by the table from its config and step count) and the arrays it
// updates (RowStep). The CPU loops and the CUDA kernels read the same struct, so a step means the
// same thing on each, with no per-backend converter.

#include <embedkit/config.hpp>
#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/detail/stored_row.hpp>
#include <embedkit/dtype.hpp>
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
  // How an updated row is rounded into float16 or bfloat16 storage (unused for float32 rows).
  RowRounding rounding{};
};

/// The arrays a step updates, with its rule.
struct RowStep {
  float* weights = nullptr;  // (input_dim, dim) float32 rows; NULL when they are stored narrower
  float* slot0 = nullptr;    // the optimizer's first state array, laid out as its descriptor says
  float* slot1 = nullptr;    // its second
  std::int64_t dim = 0;
  StepRule rule;
  // Rows stored as float16 or bfloat16: each is widened, updated in float32 and rounded back by
  // rule.rounding (detail/stored_row.hpp) at write-back; the optimizer math never sees the type.
  void* narrow_rows = nullptr;
  DType narrow_type = DType::float32;
};

}  // namespace embedkit::detail
