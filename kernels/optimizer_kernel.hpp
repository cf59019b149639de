#pragma once
// C++17, host and device. The optimizer step of one touched row by a group of lanes, in phases
// around the group collective (group_reduce.hpp): the per-element math is the CPU's
// (include/embedkit/detail/optimizer_math.hpp); row statistics (row-wise Adagrad's mean(g²), a
// norm constraint's row norm) are butterfly sums across the lanes. The __global__ wrapper is in
// optimizer.cu; tests replay the phases lane by lane on the CPU.

#include <embedkit/config.hpp>
#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/detail/padding.hpp>
#include <embedkit/optimizer.hpp>

#include <cstdint>

namespace embedkit::kernels {

/// What a step does to any row it updates: the table's arrays and the optimizer's settings.
struct RowStep {
  float* weights;
  float* slot0;  // momentum / accumulator / m ((rows, dim)), or row-wise Adagrad's (rows,)
  float* slot1;  // v / linear
  std::int64_t dim;
  OptimizerKind kind;
  detail::StepScalars scalars;
  ConstraintKind constraint;
  float max_value;
};

/// One step over `count` rows: ids[i] (sorted) with gradient rows grads[i·dim ..]; rows with
/// skip[i] != 0 are left alone. Dense (Adam without lazy): every row of [row_begin, row_end) but
/// padding moves, untouched ones with a zero gradient; `count` then only describes the touched.
struct ApplyArgs {
  RowStep step;
  const std::int64_t* ids;
  const float* grads;
  const std::uint8_t* skip;
  std::int64_t count;
  bool dense;
  std::int64_t row_begin;
  std::int64_t row_end;
  detail::Padding padding;
};

/// The row a group updates and its gradient (NULL: zero), or id < 0 when it has nothing to do.
struct RowWork {
  std::int64_t id = -1;
  const float* grad = nullptr;
};

EK_HOST_DEVICE inline RowWork row_work(std::int64_t group, const ApplyArgs& a) {
  RowWork work;
  if (!a.dense) {
    if (group < a.count && a.skip[group] == 0) {
      work.id = a.ids[group];
      work.grad = a.grads + group * a.step.dim;
    }
    return work;
  }
  const std::int64_t id = a.row_begin + group;
  if (id >= a.row_end || a.padding.is(id)) return work;
  work.id = id;
  std::int64_t low = 0, high = a.count;  // binary search of the sorted touched ids
  while (low < high) {
    const std::int64_t mid = (low + high) / 2;
    if (a.ids[mid] < id) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  if (low < a.count && a.ids[low] == id && a.skip[low] == 0) work.grad = a.grads + low * a.step.dim;
  return work;
}

// The per-column steps of the phases, shared by every kernel that updates rows (the optimizer
// step here, the fused step of fused_apply_kernel.hpp): only where the gradient comes from differs.

/// Column c's regularized g², from w before the step (row-wise Adagrad's statistic).
EK_HOST_DEVICE inline float gradient_square(const RowStep& s, std::int64_t id, std::int64_t c, float gradient) {
  const float g = detail::regularized_gradient(gradient, s.weights[id * s.dim + c], s.scalars);
  return g * g;
}

/// The row accumulator after the step (row-wise Adagrad: m + mean(g²)), written by lane 0;
/// `accumulator_before` was read by every lane before the collective.
EK_HOST_DEVICE inline float step_row_accumulator(const RowStep& s, std::int64_t id, int lane, float squares,
                                                 float accumulator_before) {
  const float accumulator = accumulator_before + squares / static_cast<float>(s.dim);
  if (s.kind == OptimizerKind::rowwise_adagrad && lane == 0) s.slot0[id] = accumulator;
  return accumulator;
}

/// The optimizer's update of column c of row `id`; `accumulator` is step_row_accumulator's.
EK_HOST_DEVICE inline void update_column(const RowStep& s, std::int64_t id, std::int64_t c, float gradient,
                                         float accumulator) {
  const std::int64_t at = id * s.dim + c;
  float& w = s.weights[at];
  const float g = detail::regularized_gradient(gradient, w, s.scalars);
  w = detail::decayed_weight(w, s.scalars);
  switch (s.kind) {
    case OptimizerKind::sgd: {
      // A value, not a reference to a stand-in: a local whose address is taken lives in memory.
      float velocity = s.slot0 != nullptr ? s.slot0[at] : 0.0f;
      detail::sgd_update(w, velocity, g, s.scalars);
      if (s.slot0 != nullptr) s.slot0[at] = velocity;
      break;
    }
    case OptimizerKind::adagrad: detail::adagrad_update(w, s.slot0[at], g, s.scalars); break;
    case OptimizerKind::rowwise_adagrad: detail::rowwise_adagrad_update(w, accumulator, g, s.scalars); break;
    case OptimizerKind::adam: detail::adam_update(w, s.slot0[at], s.slot1[at], g, s.scalars); break;
    case OptimizerKind::ftrl: detail::ftrl_update(w, s.slot0[at], s.slot1[at], g, s.scalars); break;
    case OptimizerKind::custom: break;  // never on a device
  }
}

/// Phase 1: this lane's share of Σ g² for row-wise Adagrad (0 otherwise), from w before the step.
EK_HOST_DEVICE inline float gradient_squares_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a) {
  if (work.id < 0 || a.step.kind != OptimizerKind::rowwise_adagrad) return 0.0f;
  float squares = 0.0f;
  for (std::int64_t c = lane; c < a.step.dim; c += lanes) {
    squares += gradient_square(a.step, work.id, c, work.grad != nullptr ? work.grad[c] : 0.0f);
  }
  return squares;
}

/// Phase 2: the update of this lane's columns; `squares` is the row's Σ g² (row-wise Adagrad).
EK_HOST_DEVICE inline void update_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a, float squares,
                                        float accumulator_before) {
  if (work.id < 0) return;
  const float accumulator = step_row_accumulator(a.step, work.id, lane, squares, accumulator_before);
  for (std::int64_t c = lane; c < a.step.dim; c += lanes) {
    update_column(a.step, work.id, c, work.grad != nullptr ? work.grad[c] : 0.0f, accumulator);
  }
}

/// Phase 3: this lane's share of Σ w² of row `id` (< 0: none) after the update, for MaxNorm and
/// UnitNorm (0 otherwise).
EK_HOST_DEVICE inline float weight_squares_phase(std::int64_t id, int lane, int lanes, const RowStep& s) {
  if (id < 0 || (s.constraint != ConstraintKind::max_norm && s.constraint != ConstraintKind::unit_norm)) {
    return 0.0f;
  }
  const float* w = s.weights + id * s.dim;
  float squares = 0.0f;
  for (std::int64_t c = lane; c < s.dim; c += lanes) squares += w[c] * w[c];
  return squares;
}

/// Phase 4: the constraint on this lane's columns of row `id`; `squares` is the row's Σ w².
EK_HOST_DEVICE inline void constraint_phase(std::int64_t id, int lane, int lanes, const RowStep& s, float squares) {
  if (id < 0 || s.constraint == ConstraintKind::none) return;
  float* w = s.weights + id * s.dim;
  const float norm = ::sqrtf(squares);
  for (std::int64_t c = lane; c < s.dim; c += lanes) {
    switch (s.constraint) {
      case ConstraintKind::max_norm: w[c] *= detail::max_norm_scale(norm, s.max_value); break;
      case ConstraintKind::unit_norm: w[c] /= detail::unit_norm_divisor(norm); break;
      case ConstraintKind::non_neg: w[c] = detail::non_neg(w[c]); break;
      case ConstraintKind::none: break;
    }
  }
}

}  // namespace embedkit::kernels
