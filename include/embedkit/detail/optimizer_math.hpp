#pragma once
// C++17, host and device. The update of one element of a touched row, one function per optimizer,
// shared by the CPU path and the CUDA kernels so both compute the same thing. Row-wide statistics
// (row-wise Adagrad's mean(g²), a constraint's row norm) arrive as arguments: each backend reduces
// them its own way. Formulas follow Keras 3's optimizers, in float as Keras computes float32
// variables; FBGEMM's for row-wise Adagrad.

#include <embedkit/detail/host_device.hpp>

#include <cmath>

namespace embedkit::detail {

/// The scalars of one step, derived once on the host (in float) from the optimizer config.
struct StepScalars {
  float learning_rate = 0.0f;
  float weight_decay = 0.0f;  // 0: none
  float regularizer_l1 = 0.0f;
  float regularizer_l2 = 0.0f;
  float momentum = 0.0f;  // sgd
  bool nesterov = false;  // sgd
  float epsilon = 0.0f;   // adagrad, rowwise_adagrad, adam
  float one_minus_beta_1 = 0.0f;  // adam: float(1 − β1) rounded once from double, as Keras does
  float one_minus_beta_2 = 0.0f;  // adam
  float adam_alpha = 0.0f;  // adam: lr·√(1 − β2ᵗ) / (1 − β1ᵗ)
  float ftrl_power = 0.0f;  // ftrl: −learning_rate_power
  float ftrl_l1 = 0.0f;
  float ftrl_l2 = 0.0f;  // ftrl: l2 + beta / (2·lr), as Keras folds it
  float ftrl_l2_shrinkage = 0.0f;
};

/// The gradient with the table's L1/L2 penalty added (Keras: l1·sign(w) + 2·l2·w).
EK_HOST_DEVICE inline float regularized_gradient(float g, float w, const StepScalars& s) {
  if (s.regularizer_l1 != 0.0f) g += s.regularizer_l1 * (w > 0.0f ? 1.0f : w < 0.0f ? -1.0f : 0.0f);
  if (s.regularizer_l2 != 0.0f) g += 2.0f * s.regularizer_l2 * w;
  return g;
}

/// Keras's decoupled weight decay, applied before the update: w − w·wd·lr.
EK_HOST_DEVICE inline float decayed_weight(float w, const StepScalars& s) {
  return s.weight_decay != 0.0f ? w - w * s.weight_decay * s.learning_rate : w;
}

/// SGD, with lazy momentum when s.momentum != 0 (`velocity` is then its slot).
EK_HOST_DEVICE inline void sgd_update(float& w, float& velocity, float g, const StepScalars& s) {
  if (s.momentum == 0.0f) {
    w -= g * s.learning_rate;
    return;
  }
  velocity = velocity * s.momentum - g * s.learning_rate;
  w += s.nesterov ? velocity * s.momentum - g * s.learning_rate : velocity;
}

/// Keras 3's Adagrad.
EK_HOST_DEVICE inline void adagrad_update(float& w, float& accumulator, float g, const StepScalars& s) {
  accumulator += g * g;
  w -= (s.learning_rate * g) / ::sqrtf(accumulator + s.epsilon);
}

/// Row-wise Adagrad; `row_accumulator` is this row's m after m += mean(g²).
EK_HOST_DEVICE inline void rowwise_adagrad_update(float& w, float row_accumulator, float g, const StepScalars& s) {
  w -= g * (s.learning_rate / (::sqrtf(row_accumulator) + s.epsilon));
}

/// Keras 3's Adam (m, v as Keras writes them: m += (g − m)(1 − β1), v += (g² − v)(1 − β2)).
EK_HOST_DEVICE inline void adam_update(float& w, float& m, float& v, float g, const StepScalars& s) {
  m += (g - m) * s.one_minus_beta_1;
  v += (g * g - v) * s.one_minus_beta_2;
  w -= (m * s.adam_alpha) / (::sqrtf(v) + s.epsilon);
}

/// Keras 3's FTRL-proximal.
EK_HOST_DEVICE inline void ftrl_update(float& w, float& accumulator, float& linear, float g, const StepScalars& s) {
  const float shrunk = g + 2.0f * s.ftrl_l2_shrinkage * w;
  const float new_accumulator = accumulator + g * g;
  const float new_power = ::powf(new_accumulator, s.ftrl_power);
  linear += shrunk - (new_power - ::powf(accumulator, s.ftrl_power)) / s.learning_rate * w;
  const float quadratic = new_power / s.learning_rate + 2.0f * s.ftrl_l2;
  const float clipped = ::fminf(::fmaxf(linear, -s.ftrl_l1), s.ftrl_l1);
  w = (clipped - linear) / quadratic;
  accumulator = new_accumulator;
}

/// Keras's backend epsilon, which its norm constraints add to the norm.
constexpr float kConstraintEpsilon = 1e-7f;

/// The factor MaxNorm scales a row of norm `norm` by: min(norm, max) / (ε + norm).
EK_HOST_DEVICE inline float max_norm_scale(float norm, float max_value) {
  return ::fminf(::fmaxf(norm, 0.0f), max_value) / (kConstraintEpsilon + norm);
}

/// What UnitNorm divides a row of norm `norm` by: ε + norm (Keras divides, so embedkit does too).
EK_HOST_DEVICE inline float unit_norm_divisor(float norm) { return kConstraintEpsilon + norm; }

/// NonNeg: negative values become 0 (w·[w ≥ 0], as Keras).
EK_HOST_DEVICE inline float non_neg(float w) { return w * (w >= 0.0f ? 1.0f : 0.0f); }

}  // namespace embedkit::detail
