#pragma once
// C++17, host and device. The optimizer step of one touched row by a group of lanes, in phases
// around the group collective (group_reduce.hpp): the per-element math is the CPU's
// (include/embedkit/detail/optimizer_math.hpp); row statistics (row-wise Adagrad's mean(g²), a
// norm constraint's row norm) are butterfly sums across the lanes. The __global__ wrapper is in
// optimizer.cu; tests replay the phases lane by lane on the CPU.

#include <embedkit/config.hpp>
#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/optimizer.hpp>

#include <cstdint>

namespace embedkit::kernels {

/// One step over `count` rows: ids[i] (sorted) with gradient rows grads[i·dim ..]; rows with
/// skip[i] != 0 are left alone. Dense (Adam without lazy): every row of [row_begin, row_end) but
/// padding moves, untouched ones with a zero gradient; `count` then only describes the touched.
struct ApplyArgs {
  float* weights;
  float* slot0;  // momentum / accumulator / m ((rows, dim)), or row-wise Adagrad's (rows,)
  float* slot1;  // v / linear
  std::int64_t dim;
  OptimizerKind kind;
  detail::StepScalars scalars;
  ConstraintKind constraint;
  float max_value;
  const std::int64_t* ids;
  const float* grads;
  const std::uint8_t* skip;
  std::int64_t count;
  bool dense;
  std::int64_t row_begin;
  std::int64_t row_end;
  std::int64_t padding_idx;
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
      work.grad = a.grads + group * a.dim;
    }
    return work;
  }
  const std::int64_t id = a.row_begin + group;
  if (id >= a.row_end || id == a.padding_idx) return work;
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
  if (low < a.count && a.ids[low] == id && a.skip[low] == 0) work.grad = a.grads + low * a.dim;
  return work;
}

/// Phase 1: this lane's share of Σ g² for row-wise Adagrad (0 otherwise), from w before the step.
EK_HOST_DEVICE inline float gradient_squares_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a) {
  if (work.id < 0 || a.kind != OptimizerKind::rowwise_adagrad) return 0.0f;
  const float* w = a.weights + work.id * a.dim;
  float squares = 0.0f;
  for (std::int64_t c = lane; c < a.dim; c += lanes) {
    const float g = detail::regularized_gradient(work.grad != nullptr ? work.grad[c] : 0.0f, w[c], a.scalars);
    squares += g * g;
  }
  return squares;
}

/// Phase 2: the update of this lane's columns; `squares` is the row's Σ g² (row-wise Adagrad).
/// `accumulator_before` is the row accumulator read before the phase (every lane reads it before
/// the collective; lane 0 writes it).
EK_HOST_DEVICE inline void update_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a, float squares,
                                        float accumulator_before) {
  if (work.id < 0) return;
  float* w = a.weights + work.id * a.dim;
  const std::int64_t at = work.id * a.dim;
  const float accumulator = accumulator_before + squares / static_cast<float>(a.dim);
  if (a.kind == OptimizerKind::rowwise_adagrad && lane == 0) a.slot0[work.id] = accumulator;
  for (std::int64_t c = lane; c < a.dim; c += lanes) {
    const float g = detail::regularized_gradient(work.grad != nullptr ? work.grad[c] : 0.0f, w[c], a.scalars);
    w[c] = detail::decayed_weight(w[c], a.scalars);
    float unused = 0.0f;
    switch (a.kind) {
      case OptimizerKind::sgd: detail::sgd_update(w[c], a.slot0 != nullptr ? a.slot0[at + c] : unused, g, a.scalars); break;
      case OptimizerKind::adagrad: detail::adagrad_update(w[c], a.slot0[at + c], g, a.scalars); break;
      case OptimizerKind::rowwise_adagrad: detail::rowwise_adagrad_update(w[c], accumulator, g, a.scalars); break;
      case OptimizerKind::adam: detail::adam_update(w[c], a.slot0[at + c], a.slot1[at + c], g, a.scalars); break;
      case OptimizerKind::ftrl: detail::ftrl_update(w[c], a.slot0[at + c], a.slot1[at + c], g, a.scalars); break;
      case OptimizerKind::custom: break;  // never on a device
    }
  }
}

/// Phase 3: this lane's share of Σ w² after the update, for MaxNorm and UnitNorm (0 otherwise).
EK_HOST_DEVICE inline float weight_squares_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a) {
  if (work.id < 0 || (a.constraint != ConstraintKind::max_norm && a.constraint != ConstraintKind::unit_norm)) {
    return 0.0f;
  }
  const float* w = a.weights + work.id * a.dim;
  float squares = 0.0f;
  for (std::int64_t c = lane; c < a.dim; c += lanes) squares += w[c] * w[c];
  return squares;
}

/// Phase 4: the constraint on this lane's columns; `squares` is the row's Σ w².
EK_HOST_DEVICE inline void constraint_phase(const RowWork& work, int lane, int lanes, const ApplyArgs& a,
                                            float squares) {
  if (work.id < 0 || a.constraint == ConstraintKind::none) return;
  float* w = a.weights + work.id * a.dim;
  const float norm = ::sqrtf(squares);
  for (std::int64_t c = lane; c < a.dim; c += lanes) {
    switch (a.constraint) {
      case ConstraintKind::max_norm: w[c] *= detail::max_norm_scale(norm, a.max_value); break;
      case ConstraintKind::unit_norm: w[c] /= detail::unit_norm_divisor(norm); break;
      case ConstraintKind::non_neg: w[c] = detail::non_neg(w[c]); break;
      case ConstraintKind::none: break;
    }
  }
}

}  // namespace embedkit::kernels
