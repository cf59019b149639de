#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/optimizer.hpp>
#include <embedkit/status.hpp>

#include "config/config_json.hpp"
#include "config/json_document.hpp"
#include "config/json_fields.hpp"
#include "config/keras_objects.hpp"
#include "config/optimizer_rules.hpp"
#include "config/optimizer_state.hpp"
#include "core/expects.hpp"
#include "core/float32_range.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace embedkit {
namespace {

// A built-in optimizer by its Keras class name or embedkit name (a custom one has neither).
OptimizerKind kind_from_name(const std::string& name) {
  std::vector<std::string> known;
  for (int k = 0; k < detail::kOptimizerCount; ++k) {
    const detail::OptimizerDescriptor entry = detail::describe(static_cast<OptimizerKind>(k));
    if (entry.kind == OptimizerKind::custom) continue;
    if (name == entry.keras_class || name == entry.name) return entry.kind;
    known.emplace_back(entry.keras_class);
  }
  const std::string last = known.back();
  known.pop_back();
  throw Error(Status::invalid_argument,
              fmt::format("unknown optimizer '{}' (expected {} or {})", name, fmt::join(known, ", "), last));
}

const char* class_name_of(OptimizerKind kind) { return detail::describe(kind).keras_class; }

// Keras optimizer options embedkit does not implement: accepted at their Keras default only.
void require_default(const std::string& key, const nlohmann::json& value, bool is_default, const char* default_text) {
  if (is_default) return;
  throw Error(Status::unsupported, fmt::format("optimizer {} = {} is not supported by embedkit (only the Keras "
                                               "default, {})",
                                               key, detail::json_repr(value), default_text));
}

// Reads one key of an optimizer's config into `config`; false when the key is not the optimizer's.
bool read_key(OptimizerConfig& config, const std::string& key, const nlohmann::json& value) {
  const std::string what = "optimizer " + key;
  const auto number = [&] { return detail::finite_number(value, what); };
  const OptimizerKind kind = config.kind;
  if (key == "name" || key == "ema_momentum" || key == "jit_compile" || key == "is_legacy_optimizer") {
    return true;  // a label, and options with no effect here (ema_momentum only matters with use_ema)
  }
  if (key == "learning_rate") {
    if (value.is_object()) {
      throw Error(Status::unsupported,
                  "optimizer learning_rate schedules are not supported: drive the schedule from the training loop "
                  "with set_learning_rate");
    }
    config.learning_rate = number();
  } else if (key == "weight_decay") {
    if (!value.is_null()) config.weight_decay = number();
  } else if (key == "clipnorm" || key == "global_clipnorm" || key == "clipvalue" || key == "loss_scale_factor" ||
             key == "gradient_accumulation_steps" || key == "ema_overwrite_frequency") {
    require_default(key, value, value.is_null(), "null");
  } else if (key == "use_ema" || (key == "amsgrad" && kind == OptimizerKind::adam)) {
    require_default(key, value, value.is_boolean() && !value.get<bool>(), "false");
  } else if (kind == OptimizerKind::sgd && key == "momentum") {
    config.momentum = number();
  } else if (kind == OptimizerKind::sgd && key == "nesterov") {
    config.nesterov = detail::boolean(value, what);
  } else if ((kind == OptimizerKind::adagrad || kind == OptimizerKind::rowwise_adagrad ||
              kind == OptimizerKind::ftrl) &&
             key == "initial_accumulator_value") {
    config.initial_accumulator_value = number();
  } else if ((kind == OptimizerKind::adagrad || kind == OptimizerKind::rowwise_adagrad ||
              kind == OptimizerKind::adam) &&
             key == "epsilon") {
    config.epsilon = number();
  } else if (kind == OptimizerKind::adam && key == "beta_1") {
    config.beta_1 = number();
  } else if (kind == OptimizerKind::adam && key == "beta_2") {
    config.beta_2 = number();
  } else if (kind != OptimizerKind::custom && key == "lazy") {
    config.lazy = detail::boolean(value, what);
  } else if (kind == OptimizerKind::ftrl && key == "learning_rate_power") {
    config.learning_rate_power = number();
  } else if (kind == OptimizerKind::ftrl && key == "l1_regularization_strength") {
    config.l1_regularization_strength = number();
  } else if (kind == OptimizerKind::ftrl && key == "l2_regularization_strength") {
    config.l2_regularization_strength = number();
  } else if (kind == OptimizerKind::ftrl && key == "l2_shrinkage_regularization_strength") {
    config.l2_shrinkage_regularization_strength = number();
  } else if (kind == OptimizerKind::ftrl && key == "beta") {
    config.beta = number();
  } else {
    return false;
  }
  return true;
}

}  // namespace

OptimizerConfig OptimizerConfig::defaults(OptimizerKind kind) {
  const detail::OptimizerDescriptor descriptor = detail::describe(kind);
  OptimizerConfig config;
  config.kind = kind;
  config.learning_rate = descriptor.learning_rate;
  config.epsilon = descriptor.epsilon;
  config.initial_accumulator_value = descriptor.initial_accumulator_value;
  return config;
}

OptimizerConfig OptimizerConfig::custom(CustomUpdate update, int state_width) {
  OptimizerConfig config = defaults(OptimizerKind::custom);
  config.custom_update = std::move(update);
  config.custom_state_width = state_width;
  return config;
}

OptimizerConfig OptimizerConfig::from_json(std::string_view json) {
  return detail::optimizer_from_json(detail::parse_json_document(json, "optimizer", Status::invalid_argument));
}

std::string OptimizerConfig::to_json() const { return detail::optimizer_to_json(*this).dump(); }

namespace detail {

bool zero_in_step(double value) { return flush_denormal(static_cast<float>(value)) == 0.0f; }

bool zero_accumulator_divides_zero_by_zero(const OptimizerConfig& optimizer) {
  switch (optimizer.kind) {
    case OptimizerKind::adagrad:
    case OptimizerKind::rowwise_adagrad:
      // g / (sqrt(accumulator) + epsilon) with g, the accumulator and epsilon 0.
      return zero_in_step(optimizer.epsilon);
    case OptimizerKind::ftrl:
      // At accumulator 0, accumulator^(-learning_rate_power) is 0 too, and so is the divisor
      // accumulator^p / lr + 2·(l2 + beta / (2·lr)) unless l2 or beta is > 0.
      return optimizer.learning_rate_power != 0 && zero_in_step(optimizer.l2_regularization_strength) &&
             zero_in_step(optimizer.beta);
    default: return false;
  }
}

namespace {

// The scalars of step t (1-based), in float as Keras computes float32 variables.
StepScalars step_scalars(const TableConfig& config, std::int64_t t) {
  const OptimizerConfig& o = config.optimizer;
  StepScalars s;
  s.learning_rate = flush_denormal(static_cast<float>(o.learning_rate));
  s.weight_decay = static_cast<float>(o.weight_decay.value_or(0.0));
  if (config.embeddings_regularizer) {
    s.regularizer_l1 = static_cast<float>(config.embeddings_regularizer->l1);
    s.regularizer_l2 = static_cast<float>(config.embeddings_regularizer->l2);
  }
  s.momentum = static_cast<float>(o.momentum);
  s.nesterov = o.nesterov;
  s.epsilon = static_cast<float>(o.epsilon);
  s.one_minus_beta_1 = static_cast<float>(1.0 - o.beta_1);
  s.one_minus_beta_2 = static_cast<float>(1.0 - o.beta_2);
  // Keras casts β to float32 before raising it to the (float32) step.
  const float step = static_cast<float>(t);
  const float beta_1 = static_cast<float>(o.beta_1), beta_2 = static_cast<float>(o.beta_2);
  s.adam_alpha = s.learning_rate * std::sqrt(1.0f - std::pow(beta_2, step)) / (1.0f - std::pow(beta_1, step));
  s.ftrl_power = static_cast<float>(-o.learning_rate_power);
  s.ftrl_l1 = static_cast<float>(o.l1_regularization_strength);
  s.ftrl_l2 = static_cast<float>(o.l2_regularization_strength) + static_cast<float>(o.beta) / (2.0f * s.learning_rate);
  s.ftrl_l2_shrinkage = static_cast<float>(o.l2_shrinkage_regularization_strength);
  return s;
}

}  // namespace

StepRule step_rule(const TableConfig& config, std::int64_t t) {
  StepRule rule;
  rule.kind = config.optimizer.kind;
  rule.scalars = step_scalars(config, t);
  rule.constraint = config.embeddings_constraint.kind;
  rule.max_value = static_cast<float>(config.embeddings_constraint.max_value);
  rule.judge_results = config.nonfinite_gradients != NonFiniteGradients::apply;
  return rule;
}

bool zero_gradient_moves_rows(const TableConfig& config) {
  const OptimizerConfig& o = config.optimizer;
  const bool optimizer_moves = (o.kind == OptimizerKind::sgd && !zero_in_step(o.momentum)) ||
                               o.kind == OptimizerKind::adam || o.kind == OptimizerKind::ftrl;
  const bool penalty = config.embeddings_regularizer && (!zero_in_step(config.embeddings_regularizer->l1) ||
                                                         !zero_in_step(config.embeddings_regularizer->l2));
  return optimizer_moves || !zero_in_step(o.weight_decay.value_or(0.0)) || penalty ||
         config.embeddings_constraint.kind != ConstraintKind::none;
}

bool updates_every_row(const TableConfig& config) {
  return !config.optimizer.lazy && config.optimizer.kind != OptimizerKind::custom && zero_gradient_moves_rows(config);
}

OptimizerConfig optimizer_from_json(const nlohmann::json& document) {
  if (document.is_string()) {
    OptimizerConfig config = OptimizerConfig::defaults(kind_from_name(document.get<std::string>()));
    config.validate();
    return config;
  }
  if (!document.is_object()) {
    throw Error(Status::invalid_argument, fmt::format("optimizer must be a name or a Keras optimizer object, got {}",
                                                      detail::json_repr(document)));
  }
  if (!document.contains("class_name")) throw Error(Status::invalid_argument, "optimizer object has no 'class_name'");
  const std::string class_name = detail::string(document["class_name"], "optimizer class_name");
  OptimizerConfig config = OptimizerConfig::defaults(kind_from_name(class_name));
  const nlohmann::json keras_config = detail::keras_object_config(document, "optimizer");
  for (const auto& [key, value] : keras_config.items()) {
    if (!read_key(config, key, value)) {
      throw Error(Status::invalid_argument, fmt::format("unknown key '{}' in optimizer config of {}", key, class_name));
    }
  }
  config.validate();
  return config;
}

nlohmann::json optimizer_to_json(const OptimizerConfig& optimizer) {
  nlohmann::json config = {{"name", to_string(optimizer.kind)},
                           {"learning_rate", optimizer.learning_rate},
                           {"weight_decay", optimizer.weight_decay ? nlohmann::json(*optimizer.weight_decay)
                                                                   : nlohmann::json(nullptr)}};
  switch (optimizer.kind) {
    case OptimizerKind::sgd:
      config["momentum"] = optimizer.momentum;
      config["nesterov"] = optimizer.nesterov;
      break;
    case OptimizerKind::adagrad:
    case OptimizerKind::rowwise_adagrad:
      config["initial_accumulator_value"] = optimizer.initial_accumulator_value;
      config["epsilon"] = optimizer.epsilon;
      break;
    case OptimizerKind::adam:
      config["beta_1"] = optimizer.beta_1;
      config["beta_2"] = optimizer.beta_2;
      config["epsilon"] = optimizer.epsilon;
      break;
    case OptimizerKind::ftrl:
      config["learning_rate_power"] = optimizer.learning_rate_power;
      config["initial_accumulator_value"] = optimizer.initial_accumulator_value;
      config["l1_regularization_strength"] = optimizer.l1_regularization_strength;
      config["l2_regularization_strength"] = optimizer.l2_regularization_strength;
      config["l2_shrinkage_regularization_strength"] = optimizer.l2_shrinkage_regularization_strength;
      config["beta"] = optimizer.beta;
      break;
    case OptimizerKind::custom: config["state_width"] = optimizer.custom_state_width; break;
  }
  if (optimizer.kind != OptimizerKind::custom) config["lazy"] = optimizer.lazy;
  return nlohmann::json{{"module", "keras.optimizers"},
                        {"class_name", class_name_of(optimizer.kind)},
                        {"config", config},
                        {"registered_name", nullptr}};
}

}  // namespace detail

namespace {

// Whether `kind` is one of the enumerators (a value cast from a foreign integer may not be).
bool known(OptimizerKind kind) { return static_cast<unsigned>(kind) < static_cast<unsigned>(detail::kOptimizerCount); }

}  // namespace

void OptimizerConfig::validate() const {
  EMBEDKIT_EXPECTS(known(kind), Status::invalid_argument, "optimizer kind {} is not one of embedkit's",
                   static_cast<int>(kind));
  EMBEDKIT_EXPECTS(std::isfinite(learning_rate) && learning_rate >= 0, Status::invalid_argument,
                   "optimizer learning_rate must be a finite number >= 0, got {}", learning_rate);
  // Steps compute in float32, as Keras does for float32 tables: every scalar must survive the cast.
  for (const auto& [name, value] : {std::pair{"learning_rate", learning_rate},
                                    {"weight_decay", weight_decay.value_or(0.0)},
                                    {"momentum", momentum},
                                    {"initial_accumulator_value", initial_accumulator_value},
                                    {"epsilon", epsilon},
                                    {"beta_1", beta_1},
                                    {"beta_2", beta_2},
                                    {"learning_rate_power", learning_rate_power},
                                    {"l1_regularization_strength", l1_regularization_strength},
                                    {"l2_regularization_strength", l2_regularization_strength},
                                    {"l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength},
                                    {"beta", beta}}) {
    detail::require_float32(value, fmt::format("optimizer {}", name));
  }
  using detail::zero_in_step;
  // An accumulator that can be 0 when a zero gradient arrives divides 0 by 0 unless epsilon is > 0.
  const auto require_no_zero_over_zero = [&](const char* optimizer) {
    EMBEDKIT_EXPECTS(!detail::zero_accumulator_divides_zero_by_zero(*this) || !zero_in_step(initial_accumulator_value),
                     Status::invalid_argument,
                     "optimizer {} epsilon {} with initial_accumulator_value {} divides 0 by 0 on a zero gradient: "
                     "give one of them a value of at least {} (the smallest normal float32)",
                     optimizer, epsilon, initial_accumulator_value, static_cast<double>(detail::kSmallestNormalFloat));
  };
  if (weight_decay) {
    EMBEDKIT_EXPECTS(std::isfinite(*weight_decay) && *weight_decay >= 0, Status::invalid_argument,
                     "optimizer weight_decay must be >= 0, got {}", *weight_decay);
  }
  switch (kind) {
    case OptimizerKind::sgd:
      EMBEDKIT_EXPECTS(momentum >= 0 && momentum <= 1, Status::invalid_argument,
                       "optimizer momentum must be in [0, 1], got {}", momentum);
      break;
    case OptimizerKind::adagrad:
    case OptimizerKind::rowwise_adagrad:
      EMBEDKIT_EXPECTS(initial_accumulator_value >= 0, Status::invalid_argument,
                       "optimizer initial_accumulator_value must be >= 0, got {}", initial_accumulator_value);
      EMBEDKIT_EXPECTS(epsilon >= 0, Status::invalid_argument, "optimizer epsilon must be >= 0, got {}", epsilon);
      require_no_zero_over_zero(class_name_of(kind));
      break;
    case OptimizerKind::adam:
      // In float32, as the step computes them: 0.99999999 would round to 1 and divide by zero.
      EMBEDKIT_EXPECTS(beta_1 >= 0 && static_cast<float>(beta_1) < 1.0f, Status::invalid_argument,
                       "optimizer beta_1 must be in [0, 1) as a float32, got {}", beta_1);
      EMBEDKIT_EXPECTS(beta_2 >= 0 && static_cast<float>(beta_2) < 1.0f, Status::invalid_argument,
                       "optimizer beta_2 must be in [0, 1) as a float32, got {}", beta_2);
      EMBEDKIT_EXPECTS(epsilon >= 0, Status::invalid_argument, "optimizer epsilon must be >= 0, got {}", epsilon);
      // m and v start at 0: with epsilon 0 a zero gradient computes 0/0.
      EMBEDKIT_EXPECTS(!zero_in_step(epsilon), Status::invalid_argument,
                       "optimizer Adam epsilon {} divides 0 by 0 on a zero gradient (its moments start at 0): "
                       "give epsilon a value of at least {} (the smallest normal float32)",
                       epsilon, static_cast<double>(detail::kSmallestNormalFloat));
      break;
    case OptimizerKind::ftrl:
      EMBEDKIT_EXPECTS(learning_rate_power <= 0, Status::invalid_argument,
                       "optimizer learning_rate_power must be <= 0, got {}", learning_rate_power);
      EMBEDKIT_EXPECTS(initial_accumulator_value >= 0, Status::invalid_argument,
                       "optimizer initial_accumulator_value must be >= 0, got {}", initial_accumulator_value);
      EMBEDKIT_EXPECTS(l1_regularization_strength >= 0 && l2_regularization_strength >= 0 &&
                           l2_shrinkage_regularization_strength >= 0 && beta >= 0,
                       Status::invalid_argument, "optimizer FTRL regularization strengths and beta must be >= 0");
      // FTRL divides by the rate: a denormal one is 0 on a device that flushes them, and overflows otherwise.
      EMBEDKIT_EXPECTS(!zero_in_step(learning_rate), Status::invalid_argument,
                       "optimizer Ftrl needs a learning_rate of at least {} (the smallest normal float32), got {}",
                       static_cast<double>(detail::kSmallestNormalFloat), learning_rate);
      EMBEDKIT_EXPECTS(
          !zero_in_step(initial_accumulator_value) || !detail::zero_accumulator_divides_zero_by_zero(*this),
          Status::invalid_argument,
          "optimizer Ftrl initial_accumulator_value {} with learning_rate_power {} divides 0 by 0 on a "
          "zero gradient (l2_regularization_strength and beta are 0): give "
          "initial_accumulator_value a value of at least {} (the smallest normal float32)",
          initial_accumulator_value, learning_rate_power, static_cast<double>(detail::kSmallestNormalFloat));
      break;
    case OptimizerKind::custom:
      EMBEDKIT_EXPECTS(static_cast<bool>(custom_update), Status::invalid_argument,
                       "custom optimizer has no update function");
      EMBEDKIT_EXPECTS(custom_state_width >= 0, Status::invalid_argument,
                       "custom optimizer state_width must be >= 0, got {}", custom_state_width);
      // Its callback is called once per touched id: it has no update of an untouched row to run.
      EMBEDKIT_EXPECTS(lazy, Status::invalid_argument,
                       "custom optimizer updates touched rows only: lazy must be true, got false");
      break;
  }
}

bool OptimizerConfig::has_cuda_kernel() const noexcept { return known(kind) && detail::describe(kind).on_cuda; }

const char* to_string(OptimizerKind kind) noexcept { return known(kind) ? detail::describe(kind).name : "custom"; }

}  // namespace embedkit
