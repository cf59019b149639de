#pragma once
// C++17, host and device. The fused train step: after the piece sums of the canonical reduction
// (segment_reduce_kernel.hpp), one lane group per run combines its piece sums into registers and
// runs the optimizer step of optimizer_kernel.hpp on them, so the reduced gradient row never goes
// back to global memory. Phases around the group collective (group_reduce.hpp):
//   1. combine_phase: each lane's columns of the run's gradient, in combine_body's order;
//   2. (policy skip) nonfinite_phase: a 0/1 flag summed across the group; a row with a NaN or
//      infinity is left alone and counted;
//   3. the optimizer's phases on the registers: the row's update computed into registers, then
//      (step.rule.judge_results) judged across the group by detail::keeps_update, a rejected row left
//      alone and counted as in 2, else written; then optimizer_kernel.hpp's constraint phases.
// Bit for bit what combine then apply computes. The __global__ wrapper is in fused_apply.cu;
// tests replay the phases lane by lane on the CPU.

#include <embedkit/detail/host_device.hpp>

#include "elementwise_kernel.hpp"
#include "launch_plan.hpp"
#include "optimizer_kernel.hpp"
#include "segment_reduce_kernel.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// Gradient columns one lane holds in registers: rows up to 32 lanes × 8 = 256 floats fuse.
constexpr int kMaxColumnsPerLane = 8;

/// Whether rows of `dim` fit the fused step's registers (plan_groups gives them at most 32 lanes).
EK_HOST_DEVICE inline bool fits_fused(std::int64_t dim) {
  return dim >= 1 && dim <= plan_groups(1, dim).lanes * std::int64_t{kMaxColumnsPerLane};
}

/// One fused step over `runs` runs: run u is id ids[u] with pieces [first_piece[u],
/// first_piece[u+1]) of piece_sums (pieces × dim). Under skip_nonfinite, rows whose gradient
/// holds a NaN or infinity are left alone and counted in *skipped; under step.rule.judge_results, so
/// are rows whose update fails detail::keeps_update.
struct FusedApplyArgs {
  RowStep step;
  const std::int64_t* ids;          // runs, strictly increasing
  const std::int64_t* first_piece;  // runs + 1
  std::int64_t runs;
  const float* piece_sums;
  bool skip_nonfinite;
  unsigned long long* skipped;  // one counter, device memory
};

/// A lane's share of one row: the id (< 0: nothing to do) and its columns lane + k·lanes.
struct LaneRow {
  std::int64_t id = -1;
  float gradient[kMaxColumnsPerLane] = {};
};

/// Phase 1: the gradient of this lane's columns of the group's run (zeros past dim).
EK_HOST_DEVICE inline LaneRow combine_phase(std::int64_t group, int lane, int lanes, const FusedApplyArgs& a) {
  LaneRow row;
  if (group >= a.runs) return row;
  row.id = a.ids[group];
  EK_UNROLL
  for (int k = 0; k < kMaxColumnsPerLane; ++k) {
    const std::int64_t c = lane + static_cast<std::int64_t>(k) * lanes;
    if (c < a.step.dim) row.gradient[k] = combined_column(a.first_piece, group, a.piece_sums, a.step.dim, c);
  }
  return row;
}

/// Phase 2 (skip policy): 1 when one of this lane's columns is not finite, else 0; summed across
/// the group, a non-zero total leaves the row alone.
EK_HOST_DEVICE inline float nonfinite_phase(const LaneRow& row, int lane, int lanes, std::int64_t dim) {
  if (row.id < 0) return 0.0f;
  float bad = 0.0f;
  EK_UNROLL
  for (int k = 0; k < kMaxColumnsPerLane; ++k) {
    const std::int64_t c = lane + static_cast<std::int64_t>(k) * lanes;
    if (c < dim && !finite_value(row.gradient[k])) bad = 1.0f;
  }
  return bad;
}

/// Phase 3: this lane's share of Σ g² for row-wise Adagrad (0 otherwise), as gradient_squares_phase.
EK_HOST_DEVICE inline float fused_gradient_squares_phase(const LaneRow& row, int lane, int lanes, const RowStep& s) {
  if (row.id < 0 || !detail::has_row_statistic(s.rule.kind)) return 0.0f;
  float squares = 0.0f;
  EK_UNROLL
  for (int k = 0; k < kMaxColumnsPerLane; ++k) {
    const std::int64_t c = lane + static_cast<std::int64_t>(k) * lanes;
    if (c < s.dim) squares += gradient_square(s, row.id, c, row.gradient[k]);
  }
  return squares;
}

/// A lane's share of a row's update, in registers until fused_store_phase writes it.
struct LaneUpdate {
  ColumnUpdate column[kMaxColumnsPerLane];
  float accumulator = 0.0f;  // row-wise Adagrad's row accumulator after the step
};

/// Phase 4: the update of this lane's columns, as update_phase computes it, into registers.
EK_HOST_DEVICE inline LaneUpdate fused_update_phase(const LaneRow& row, int lane, int lanes, const RowStep& s,
                                                    float squares, float accumulator_before) {
  LaneUpdate update;
  if (row.id < 0) return update;
  update.accumulator = step_row_accumulator(s, squares, accumulator_before);
  EK_UNROLL
  for (int k = 0; k < kMaxColumnsPerLane; ++k) {
    const std::int64_t c = lane + static_cast<std::int64_t>(k) * lanes;
    if (c < s.dim) update.column[k] = column_update(s, row.id, c, row.gradient[k], update.accumulator);
  }
  return update;
}

/// Phase 5 (step.rule.judge_results): 1 when one of this lane's updated columns fails keeps_column,
/// else 0; summed across the group, a non-zero total leaves the row alone, as nonfinite_phase's.
EK_HOST_DEVICE inline float fused_judge_phase(const LaneRow& row, const LaneUpdate& update, int lane, int lanes,
                                              std::int64_t dim) {
  if (row.id < 0) return 0.0f;
  bool keeps = true;
  EK_UNROLL
  for (int k = 0; k < kMaxColumnsPerLane; ++k) {
    const std::int64_t c = lane + static_cast<std::int64_t>(k) * lanes;
    if (c < dim) keeps &= keeps_column(update.column[k]);
  }
  return keeps ? 0.0f : 1.0f;
}

/// Phase 6: writes this lane's columns of the update (lane 0 the row accumulator too); then
/// weight_squares_phase and constraint_phase of optimizer_kernel.hpp finish the row.
EK_HOST_DEVICE inline void fused_store_phase(const LaneRow& row, const LaneUpdate& update, int lane, int lanes,
                                             const RowStep& s) {
  if (row.id < 0) return;
  store_row_accumulator(s, row.id, lane, update.accumulator);
  EK_UNROLL
  for (int k = 0; k < kMaxColumnsPerLane; ++k) {
    const std::int64_t c = lane + static_cast<std::int64_t>(k) * lanes;
    if (c < s.dim) store_column(s, row.id, c, update.column[k]);
  }
}

}  // namespace embedkit::kernels
