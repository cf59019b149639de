#pragma once
/// @file optimizer.hpp
/// @brief Sparse optimizers, with Keras's class names, argument names and defaults.

#include <embedkit/export.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace embedkit {

/// @brief The update rule a table trains with.
enum class OptimizerKind {
  sgd,              ///< w -= lr·g; with momentum μ > 0: a = μ·a − lr·g; w += a (nesterov: w += μ·a − lr·g)
  adagrad,          ///< acc += g²; w -= lr·g / √(acc + ε)   (Keras 3)
  rowwise_adagrad,  ///< FBGEMM's: one accumulator per row, m += mean(g²); w -= lr·g / (√m + ε)
  adam,             ///< Keras 3's Adam
  ftrl,             ///< Keras 3's FTRL-proximal
  custom,           ///< a host callback: its table stays on the CPU (always the last enumerator)
};

/// @brief A user-defined update of one touched row: `weights` and `state` (state_width floats,
/// zero at creation) are updated in place from the folded gradient row `grad`. Called on the
/// calling thread, once per touched id, in increasing id order.
using CustomUpdate = std::function<void(std::int64_t id, float* weights, const float* grad, float* state, int dim)>;

/// @brief An optimizer and its hyperparameters; fields that do not apply to `kind` are ignored.
struct EMBEDKIT_API OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  double learning_rate = 0.01;             ///< Keras's defaults: 0.01 for SGD and row-wise Adagrad, 0.001 otherwise
  std::optional<double> weight_decay;      ///< decoupled, Keras's formula w -= w·wd·lr, on updated rows
  double momentum = 0.0;                   ///< sgd
  bool nesterov = false;                   ///< sgd
  double initial_accumulator_value = 0.1;  ///< adagrad, ftrl (0 for rowwise_adagrad)
  double epsilon = 1e-7;                   ///< adagrad, adam (1e-8 for rowwise_adagrad)
  double beta_1 = 0.9;                     ///< adam
  double beta_2 = 0.999;                   ///< adam
  /// Built-ins: true updates touched rows only. False is Keras's semantics (its dense gradient):
  /// every row each step, where a zero gradient moves rows (momentum decay, Adam's moments, FTRL's
  /// reset of never-touched rows, weight decay, a regularizer, a constraint), O(input_dim·dim) work
  /// a step. Custom optimizers are lazy only.
  bool lazy = true;
  double learning_rate_power = -0.5;                  ///< ftrl
  double l1_regularization_strength = 0.0;            ///< ftrl
  double l2_regularization_strength = 0.0;            ///< ftrl
  double l2_shrinkage_regularization_strength = 0.0;  ///< ftrl
  double beta = 0.0;                                  ///< ftrl
  CustomUpdate custom_update;                         ///< custom
  int custom_state_width = 0;                         ///< custom: floats of state per row

  /// @brief An optimizer of `kind` with Keras's defaults for it.
  static OptimizerConfig defaults(OptimizerKind kind);
  /// @brief A user-defined optimizer with `state_width` floats of state per row.
  static OptimizerConfig custom(CustomUpdate update, int state_width);

  /// @brief Reads a lower-case name ("sgd", "adagrad", "rowwise_adagrad", "adam", "ftrl") or a Keras
  /// optimizer object ({"class_name": "Adagrad", "config": {...}}, as keras.optimizers.serialize
  /// writes it). Keras keys embedkit does not implement (clipnorm, use_ema, amsgrad, ...) are
  /// accepted at their defaults. @throws Error(invalid_argument) or Error(unsupported), naming the key.
  static OptimizerConfig from_json(std::string_view json);
  /// @brief The Keras object form, which from_json reads back (not for custom optimizers).
  std::string to_json() const;

  /// @brief Checks ranges (learning rate ≥ 0, betas in [0, 1), ...). @throws Error(invalid_argument).
  void validate() const;
  /// @brief Whether the optimizer has a sparse CUDA kernel (every built-in does; custom does not).
  bool has_cuda_kernel() const noexcept;
};

/// @brief The snake_case name of an optimizer, e.g. "rowwise_adagrad".
EMBEDKIT_API const char* to_string(OptimizerKind kind) noexcept;

}  // namespace embedkit
