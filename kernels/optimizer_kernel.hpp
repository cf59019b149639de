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
#include <embedkit/detail/row_step.hpp>
#include <embedkit/detail/square_sum.hpp>
#include <embedkit/optimizer.hpp>

#include <cstdint>

namespace embedkit::kernels {

/// What a step does to any row it updates: the table's arrays and the step's rule.
using detail::RowStep;

/// One step over `count` rows: ids[i] (sorted) with gradient rows grads[i·dim ..]; rows with
/// skip[i] != 0 are left alone. Dense (lazy: false): every row of [row_begin, row_end) but
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
  unsigned long long* rejected = nullptr;  // step.rule.judge_results: rows left alone, one counter (device memory)
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
  const float g = detail::regularized_gradient(gradient, s.weights[id * s.dim + c], s.rule.scalars);
  return g * g;
}

/// The row accumulator after the step (row-wise Adagrad: m + mean(g²)); `accumulator_before`
/// was read by every lane before the collective. Written by store_row_accumulator.
EK_HOST_DEVICE inline float step_row_accumulator(const RowStep& s, float squares, float accumulator_before) {
  return accumulator_before + squares / static_cast<float>(s.dim);
}

/// Lane 0 writes row-wise Adagrad's row accumulator (step_row_accumulator's).
EK_HOST_DEVICE inline void store_row_accumulator(const RowStep& s, std::int64_t id, int lane, float accumulator) {
  if (detail::has_row_statistic(s.rule.kind) && lane == 0) s.slot0[id] = accumulator;
}

/// Whether optimizer `kind` keeps a per-column state array as slot `k` (its descriptor's layout).
EK_HOST_DEVICE constexpr bool has_column_slot(OptimizerKind kind, int k) {
  return k < detail::describe(kind).slot_count && detail::describe(kind).slots[k].width == detail::SlotWidth::row_width;
}

/// What the update of one column leaves, computed in registers before anything is written: its
/// weight and the optimizer state it sees (row-wise Adagrad: the row's accumulator; 0 where the
/// optimizer keeps none), which detail::keeps_update judges.
struct ColumnUpdate {
  float weight = 0.0f;
  float slot0 = 0.0f;  // velocity / accumulator / m
  float slot1 = 0.0f;  // v / linear
};

/// The optimizer's update of column c of row `id`, not written; `accumulator` is
/// step_row_accumulator's.
EK_HOST_DEVICE inline ColumnUpdate column_update(const RowStep& s, std::int64_t id, std::int64_t c, float gradient,
                                                 float accumulator) {
  const std::int64_t at = id * s.dim + c;
  ColumnUpdate u;
  u.weight = s.weights[at];
  const float g = detail::regularized_gradient(gradient, u.weight, s.rule.scalars);
  u.weight = detail::decayed_weight(u.weight, s.rule.scalars);
  detail::with_optimizer(s.rule.kind, [&](auto kind) {
    constexpr OptimizerKind K = decltype(kind)::value;
    if constexpr (detail::describe(K).row_statistic) {
      u.slot0 = accumulator;  // judged as the row's state
    } else {
      if constexpr (has_column_slot(K, 0)) {
        if (s.slot0 != nullptr) u.slot0 = s.slot0[at];  // SGD keeps its momentum only with momentum > 0
      }
      if constexpr (has_column_slot(K, 1)) u.slot1 = s.slot1[at];
    }
    detail::update_element<K>(u.weight, u.slot0, u.slot1, g, accumulator, s.rule.scalars);  // custom: never on a device
  });
  return u;
}

/// Whether the step may keep column_update's result: the shared rule of every backend.
EK_HOST_DEVICE inline bool keeps_column(const ColumnUpdate& u) {
  return detail::keeps_update(u.weight, u.slot0, u.slot1);
}

/// Writes column c of row `id`'s update: its weight and the per-column state the optimizer keeps
/// (row-wise Adagrad's row accumulator is store_row_accumulator's).
EK_HOST_DEVICE inline void store_column(const RowStep& s, std::int64_t id, std::int64_t c, const ColumnUpdate& u) {
  const std::int64_t at = id * s.dim + c;
  s.weights[at] = u.weight;
  detail::with_optimizer(s.rule.kind, [&](auto kind) {
    constexpr OptimizerKind K = decltype(kind)::value;
    if constexpr (has_column_slot(K, 0)) {
      if (s.slot0 != nullptr) s.slot0[at] = u.slot0;
    }
    if constexpr (has_column_slot(K, 1)) s.slot1[at] = u.slot1;
  });
}

/// Phase 1: this lane's share of Σ g² for row-wise Adagrad (0 otherwise), from w before the step.
EK_HOST_DEVICE inline float gradient_squares_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a) {
  if (work.id < 0 || !detail::has_row_statistic(a.step.rule.kind)) return 0.0f;
  float squares = 0.0f;
  for (std::int64_t c = lane; c < a.step.dim; c += lanes) {
    squares += gradient_square(a.step, work.id, c, work.grad != nullptr ? work.grad[c] : 0.0f);
  }
  return squares;
}

/// Phase 2 (step.rule.judge_results): 1 when the update of one of this lane's columns fails
/// keeps_column, else 0; summed across the group, a non-zero total leaves the row alone. Rows of
/// any width: the update is computed and dropped here, and computed again (the same bits) by
/// update_phase for a row that keeps it.
EK_HOST_DEVICE inline float judge_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a, float squares,
                                        float accumulator_before) {
  if (work.id < 0) return 0.0f;
  const float accumulator = step_row_accumulator(a.step, squares, accumulator_before);
  bool keeps = true;
  for (std::int64_t c = lane; c < a.step.dim; c += lanes) {
    keeps &= keeps_column(column_update(a.step, work.id, c, work.grad != nullptr ? work.grad[c] : 0.0f, accumulator));
  }
  return keeps ? 0.0f : 1.0f;
}

/// Phase 3: the update of this lane's columns; `squares` is the row's Σ g² (row-wise Adagrad).
EK_HOST_DEVICE inline void update_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a, float squares,
                                        float accumulator_before) {
  if (work.id < 0) return;
  const float accumulator = step_row_accumulator(a.step, squares, accumulator_before);
  store_row_accumulator(a.step, work.id, lane, accumulator);
  for (std::int64_t c = lane; c < a.step.dim; c += lanes) {
    store_column(a.step, work.id, c,
                 column_update(a.step, work.id, c, work.grad != nullptr ? work.grad[c] : 0.0f, accumulator));
  }
}

/// Phase 4: this lane's share of Σ w² of row `id` (< 0: none) after the update, for MaxNorm and
/// UnitNorm (0 otherwise); the group adds the shares (group_sum) before constraint_phase.
EK_HOST_DEVICE inline detail::SquareSum weight_squares_phase(std::int64_t id, int lane, int lanes, const RowStep& s) {
  detail::SquareSum squares;
  if (id < 0 || !detail::needs_row_norm(s.rule.constraint)) {
    return squares;
  }
  const float* w = s.weights + id * s.dim;
  for (std::int64_t c = lane; c < s.dim; c += lanes) squares.add(w[c]);
  return squares;
}

/// Phase 5: the constraint on this lane's columns of row `id`; `squares` is the row's Σ w².
EK_HOST_DEVICE inline void constraint_phase(std::int64_t id, int lane, int lanes, const RowStep& s,
                                            const detail::SquareSum& squares) {
  if (id < 0 || s.rule.constraint == ConstraintKind::none) return;
  float* w = s.weights + id * s.dim;
  const float norm = squares.root();
  const float factor = detail::constraint_factor(s.rule.constraint, norm, s.rule.max_value);
  detail::with_constraint(s.rule.constraint, [&](auto kind) {
    for (std::int64_t c = lane; c < s.dim; c += lanes) w[c] = detail::constrained<decltype(kind)::value>(w[c], factor);
  });
}

}  // namespace embedkit::kernels
