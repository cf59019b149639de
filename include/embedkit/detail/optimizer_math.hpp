#pragma once
// C++17, host and device. Every optimizer, once: its descriptor (names, Keras's defaults, state
// slots, row statistic, backends) and the update of one element of a touched row, shared by config
// parsing, state allocation, the tool, the CPU loops and the CUDA kernels, so all of them compute
// and lay out the same thing. Row-wide statistics (row-wise Adagrad's mean(g²), a constraint's row
// norm) arrive as arguments: each backend reduces them its own way. Formulas follow Keras 3's
// optimizers, in float as Keras computes float32 variables; FBGEMM's for row-wise Adagrad.
// docs/architecture.md lists what else a new optimizer touches.

#include <embedkit/config.hpp>
#include <embedkit/detail/host_device.hpp>
#include <embedkit/optimizer.hpp>

#include <cmath>
#include <type_traits>

namespace embedkit::detail {

/// The smallest normal float32. Below it a device flushing denormals reads 0: a rate, epsilon or
/// accumulator smaller than this counts as 0 wherever embedkit decides whether 0/0 is reachable.
constexpr float kSmallestNormalFloat = 1.17549435082228750797e-38f;

/// `x`, or 0 when it is a denormal: a step scalar means the same on every backend, whether or not
/// it flushes denormals (a learning rate of 1e-44 is 0, not a rate that moves rows by 1e-44·g).
EK_HOST_DEVICE inline float flush_denormal(float x) { return ::fabsf(x) < kSmallestNormalFloat ? 0.0f : x; }

/// The scalars of one step, derived once on the host (in float) from the optimizer config.
struct StepScalars {
  float learning_rate = 0.0f;
  float weight_decay = 0.0f;  // 0: none
  float regularizer_l1 = 0.0f;
  float regularizer_l2 = 0.0f;
  float momentum = 0.0f;          // sgd
  bool nesterov = false;          // sgd
  float epsilon = 0.0f;           // adagrad, rowwise_adagrad, adam
  float one_minus_beta_1 = 0.0f;  // adam: float(1 − β1) rounded once from double, as Keras does
  float one_minus_beta_2 = 0.0f;  // adam
  float adam_alpha = 0.0f;        // adam: lr·√(1 − β2ᵗ) / (1 − β1ᵗ)
  float ftrl_power = 0.0f;        // ftrl: −learning_rate_power
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

/// How wide one row's share of a state slot is.
enum class SlotWidth {
  row_width,  // one value per weight: (input_dim, dim)
  one,        // one value per row: (input_dim,)
  custom,     // OptimizerConfig::custom_state_width values per row
};

/// One array of optimizer state, named as Keras names the variable.
struct SlotDescriptor {
  const char* name;
  SlotWidth width;
  bool starts_at_initial_accumulator;  // else it starts at 0
  bool non_negative;                   // an accumulator or second moment: the update takes its root
  bool only_with_momentum;             // kept only when OptimizerConfig::momentum != 0
};

/// An optimizer as every layer sees it.
struct OptimizerDescriptor {
  OptimizerKind kind;
  const char* name;         // embedkit's and the C ABI's spelling
  const char* keras_class;  // Keras's class_name
  double learning_rate;     // Keras's defaults (FBGEMM's for row-wise Adagrad)
  double epsilon;
  double initial_accumulator_value;
  int slot_count;
  SlotDescriptor slots[2];
  bool row_statistic;  // the row's mean(g²) is accumulated (slot 0, width one) before the update
  bool on_cuda;        // the CUDA kernels run it (a custom update is a host callback)
};

/// The descriptor of `kind`: the table of optimizers, one case each. A function rather than an array
/// so that device code may read it too.
EK_HOST_DEVICE constexpr OptimizerDescriptor describe(OptimizerKind kind) {
  // One optimizer per case, its fields in OptimizerDescriptor's order:
  // kind, name, Keras class, learning_rate, epsilon, initial_accumulator_value, slot count,
  // slots {name, width, starts at initial_accumulator_value, non-negative, only with momentum},
  // row statistic, on CUDA.
  // clang-format off
  switch (kind) {
    case OptimizerKind::sgd:
      return {OptimizerKind::sgd, "sgd", "SGD", 0.01, 1e-7, 0.1, 1,
              {{"momentum", SlotWidth::row_width, false, false, true}, {}},
              false, true};
    case OptimizerKind::adagrad:
      return {OptimizerKind::adagrad, "adagrad", "Adagrad", 0.001, 1e-7, 0.1, 1,
              {{"accumulator", SlotWidth::row_width, true, true, false}, {}},
              false, true};
    case OptimizerKind::rowwise_adagrad:
      return {OptimizerKind::rowwise_adagrad, "rowwise_adagrad", "RowWiseAdagrad", 0.01, 1e-8, 0.0, 1,
              {{"row_accumulator", SlotWidth::one, true, true, false}, {}},
              true, true};
    case OptimizerKind::adam:
      return {OptimizerKind::adam, "adam", "Adam", 0.001, 1e-7, 0.1, 2,
              {{"momentum", SlotWidth::row_width, false, false, false},
               {"velocity", SlotWidth::row_width, false, true, false}},
              false, true};
    case OptimizerKind::ftrl:
      return {OptimizerKind::ftrl, "ftrl", "Ftrl", 0.001, 1e-7, 0.1, 2,
              {{"accumulator", SlotWidth::row_width, true, true, false},
               {"linear", SlotWidth::row_width, false, false, false}},
              false, true};
    case OptimizerKind::custom: break;
  }
  return {OptimizerKind::custom, "custom", "custom", 0.01, 1e-7, 0.1, 1,
          {{"state", SlotWidth::custom, false, false, false}, {}},
          false, false};
  // clang-format on
}

/// How many optimizers there are: OptimizerKind's enumerators, custom the last.
constexpr int kOptimizerCount = static_cast<int>(OptimizerKind::custom) + 1;

/// The update of one element by optimizer K: its weight `w` and its per-column state (`slot0`,
/// `slot1`; ignored where K keeps none); `row_accumulator` is row-wise Adagrad's m after
/// m += mean(g²). A custom update is the table's host callback, not this.
template <OptimizerKind K>
EK_HOST_DEVICE inline void update_element(float& w, float& slot0, float& slot1, float g, float row_accumulator,
                                          const StepScalars& s) {
  (void)slot0, (void)slot1, (void)row_accumulator;
  if constexpr (K == OptimizerKind::sgd) sgd_update(w, slot0, g, s);
  if constexpr (K == OptimizerKind::adagrad) adagrad_update(w, slot0, g, s);
  if constexpr (K == OptimizerKind::rowwise_adagrad) rowwise_adagrad_update(w, row_accumulator, g, s);
  if constexpr (K == OptimizerKind::adam) adam_update(w, slot0, slot1, g, s);
  if constexpr (K == OptimizerKind::ftrl) ftrl_update(w, slot0, slot1, g, s);
}

/// Calls `body(std::integral_constant<OptimizerKind, kind>{})`: the one switch over optimizer
/// kinds, so that each backend's loop is compiled per optimizer.
template <class Body>
EK_HOST_DEVICE inline void with_optimizer(OptimizerKind kind, Body&& body) {
  switch (kind) {
    case OptimizerKind::sgd: return body(std::integral_constant<OptimizerKind, OptimizerKind::sgd>{});
    case OptimizerKind::adagrad: return body(std::integral_constant<OptimizerKind, OptimizerKind::adagrad>{});
    case OptimizerKind::rowwise_adagrad:
      return body(std::integral_constant<OptimizerKind, OptimizerKind::rowwise_adagrad>{});
    case OptimizerKind::adam: return body(std::integral_constant<OptimizerKind, OptimizerKind::adam>{});
    case OptimizerKind::ftrl: return body(std::integral_constant<OptimizerKind, OptimizerKind::ftrl>{});
    case OptimizerKind::custom: return body(std::integral_constant<OptimizerKind, OptimizerKind::custom>{});
  }
}

/// Whether `kind` accumulates a row statistic before its update (detail::describe), answered in
/// a way device code folds to constants: no descriptor, with its names, is built at run time.
EK_HOST_DEVICE inline bool has_row_statistic(OptimizerKind kind) {
  bool statistic = false;
  with_optimizer(kind, [&](auto k) {
    constexpr bool kStatistic = describe(decltype(k)::value).row_statistic;
    statistic = kStatistic;
  });
  return statistic;
}

/// Whether v is neither NaN nor infinite, without a libm call the host and device spell differently.
EK_HOST_DEVICE inline bool finite_value(float v) { return v - v == 0.0f; }

/// Whether a step may keep what it computed for one element of a row: its weight and its optimizer
/// state (`slot0`, `slot1`; 0 where the optimizer has none) must all be finite. A step never turns
/// a row non-finite silently: unless the table's policy is to apply non-finite values, a row with
/// one element failing this is left as it was before the step and counted (skip), or fails the
/// step before anything changes (error), as a non-finite gradient row is. Checked before the
/// constraint, which keeps a finite row finite.
EK_HOST_DEVICE inline bool keeps_update(float w, float slot0, float slot1) {
  return finite_value(w) && finite_value(slot0) && finite_value(slot1);
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

/// Whether `kind` needs the row's norm (√Σw² after the update).
EK_HOST_DEVICE inline bool needs_row_norm(ConstraintKind kind) {
  return kind == ConstraintKind::max_norm || kind == ConstraintKind::unit_norm;
}

/// What constraint `kind` applies to each weight of a row, computed once per row from its norm
/// after the update: MaxNorm's scale, UnitNorm's divisor (1 for the others).
EK_HOST_DEVICE inline float constraint_factor(ConstraintKind kind, float norm, float max_value) {
  if (kind == ConstraintKind::max_norm) return max_norm_scale(norm, max_value);
  if (kind == ConstraintKind::unit_norm) return unit_norm_divisor(norm);
  return 1.0f;
}

/// One weight under constraint K, given constraint_factor's value for its row.
template <ConstraintKind K>
EK_HOST_DEVICE inline float constrained(float w, float factor) {
  (void)factor;
  if constexpr (K == ConstraintKind::max_norm) return w * factor;
  if constexpr (K == ConstraintKind::unit_norm) return w / factor;  // Keras divides: so does embedkit
  if constexpr (K == ConstraintKind::non_neg) return non_neg(w);
  return w;
}

/// Calls `body(std::integral_constant<ConstraintKind, kind>{})`: the one switch over constraints,
/// so that a backend's loop over a row's weights is compiled per constraint.
template <class Body>
EK_HOST_DEVICE inline void with_constraint(ConstraintKind kind, Body&& body) {
  switch (kind) {
    case ConstraintKind::none: return body(std::integral_constant<ConstraintKind, ConstraintKind::none>{});
    case ConstraintKind::max_norm: return body(std::integral_constant<ConstraintKind, ConstraintKind::max_norm>{});
    case ConstraintKind::unit_norm: return body(std::integral_constant<ConstraintKind, ConstraintKind::unit_norm>{});
    case ConstraintKind::non_neg: return body(std::integral_constant<ConstraintKind, ConstraintKind::non_neg>{});
  }
}

}  // namespace embedkit::detail
