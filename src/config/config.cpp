#include <embedkit/config.hpp>
#include <embedkit/detail/init_sampler.hpp>
#include <embedkit/status.hpp>

#include "config/config_json.hpp"
#include "config/initializer_json.hpp"
#include "config/json_document.hpp"
#include "config/json_fields.hpp"
#include "config/keras_objects.hpp"
#include "core/expects.hpp"
#include "core/float32_range.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace embedkit {
namespace {

// Columns are a 32-bit counter of the initializer's generator.
constexpr std::int64_t kMaxOutputDim = std::numeric_limits<std::int32_t>::max();

BoundsCheck parse_bounds_check(const nlohmann::json& value) {
  const std::string mode = detail::string(value, "bounds_check");
  if (mode == "error") return BoundsCheck::error;
  if (mode == "zero_fill") return BoundsCheck::zero_fill;
  throw Error(Status::invalid_argument,
              fmt::format("bounds_check must be 'error' or 'zero_fill', got {}", detail::json_repr(value)));
}

PaddingReads parse_padding_reads(const nlohmann::json& value) {
  const std::string mode = detail::string(value, "padding_reads");
  if (mode == "zeros") return PaddingReads::zeros;
  if (mode == "row") return PaddingReads::row;
  throw Error(Status::invalid_argument,
              fmt::format("padding_reads must be 'zeros' or 'row', got {}", detail::json_repr(value)));
}

Rounding parse_rounding(const nlohmann::json& value) {
  const std::string rounding = detail::string(value, "rounding");
  if (rounding == "stochastic") return Rounding::stochastic;
  if (rounding == "nearest") return Rounding::nearest;
  throw Error(Status::invalid_argument,
              fmt::format("rounding must be 'stochastic' or 'nearest', got {}", detail::json_repr(value)));
}

NonFiniteGradients parse_nonfinite(const nlohmann::json& value) {
  const std::string policy = detail::string(value, "nonfinite_gradients");
  if (policy == "skip") return NonFiniteGradients::skip;
  if (policy == "apply") return NonFiniteGradients::apply;
  if (policy == "error") return NonFiniteGradients::error;
  throw Error(Status::invalid_argument,
              fmt::format("nonfinite_gradients must be 'skip', 'apply' or 'error', got {}", detail::json_repr(value)));
}

PlacementPolicy parse_placement(const nlohmann::json& value) {
  const std::string policy = detail::string(value, "placement");
  if (policy == "auto") return PlacementPolicy::automatic;
  if (policy == "cpu") return PlacementPolicy::cpu;
  if (policy == "cuda") return PlacementPolicy::cuda;
  throw Error(Status::invalid_argument,
              fmt::format("placement must be 'auto', 'cpu' or 'cuda', got {}", detail::json_repr(value)));
}

// norm_type: a positive number, or infinity as the string "inf" or "Infinity" (JSON has no
// infinite number, and the parser refuses one that overflows a double).
double parse_norm_type(const nlohmann::json& value) {
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (text == "inf" || text == "Infinity") return std::numeric_limits<double>::infinity();
  } else if (value.is_number() && !value.is_boolean()) {
    return value.get<double>();  // validate() checks the range
  }
  throw Error(Status::invalid_argument,
              fmt::format("norm_type must be a positive number or \"inf\", got {}", detail::json_repr(value)));
}

// A Keras option embedkit does not implement is accepted at its default and refused otherwise.
void require_keras_default(std::string_view key, const nlohmann::json& value, bool is_default,
                           std::string_view default_text) {
  EMBEDKIT_EXPECTS(is_default, Status::unsupported, "{} = {} is not supported by embedkit (only the Keras default, {})",
                   key, detail::json_repr(value), default_text);
}

// input_length: null or a positive integer; batch_input_shape: null or a list of those.
void check_shape_hint(const nlohmann::json& value, std::string_view key) {
  const auto dimension_ok = [](const nlohmann::json& d) {
    return d.is_null() || (d.is_number_integer() && d.get<std::int64_t>() > 0);
  };
  bool ok = dimension_ok(value);
  if (value.is_array()) {
    ok = true;
    for (const auto& d : value) ok = ok && dimension_ok(d);
  }
  EMBEDKIT_EXPECTS(ok, Status::invalid_argument, "{} must be null, a positive integer or a list of them, got {}", key,
                   detail::json_repr(value));
}

}  // namespace

TableConfig TableConfig::from_json(std::string_view json) {
  return detail::config_from_json(detail::parse_json_document(json, "config", Status::invalid_argument));
}

std::string TableConfig::to_json() const { return detail::config_to_json(*this).dump(); }

namespace detail {

TableConfig config_from_json(const nlohmann::json& document) {
  EMBEDKIT_EXPECTS(document.is_object(), Status::invalid_argument, "config must be a JSON object, got {}",
                   detail::json_repr(document));
  TableConfig config;
  bool has_input_dim = false, has_output_dim = false;
  for (const auto& [key, value] : document.items()) {
    if (key == "input_dim") {
      config.input_dim = detail::positive_integer(value, key);
      has_input_dim = true;
    } else if (key == "output_dim") {
      config.output_dim = detail::positive_integer(value, key);
      has_output_dim = true;
    } else if (key == "embeddings_initializer") {
      config.embeddings_initializer = detail::initializer_from_json(value);
    } else if (key == "embeddings_regularizer") {
      config.embeddings_regularizer = detail::regularizer_from_json(value);
    } else if (key == "embeddings_constraint") {
      config.embeddings_constraint = detail::constraint_from_json(value);
    } else if (key == "seed") {
      if (!value.is_null()) config.seed = detail::non_negative_integer(value, key);
    } else if (key == "mask_zero") {
      config.mask_zero = detail::boolean(value, key);
    } else if (key == "padding_idx") {
      if (!value.is_null()) config.padding_idx = detail::integer(value, key);
    } else if (key == "padding_reads") {
      config.padding_reads = parse_padding_reads(value);
    } else if (key == "bounds_check") {
      config.bounds_check = parse_bounds_check(value);
    } else if (key == "trainable") {
      config.trainable = detail::boolean(value, key);
    } else if (key == "name") {
      config.name = detail::string(value, key);
    } else if (key == "placement") {
      config.placement = parse_placement(value);
    } else if (key == "optimizer") {
      if (!value.is_null()) config.optimizer = detail::optimizer_from_json(value);
    } else if (key == "gpu_memory_limit") {
      if (!value.is_null()) config.gpu_memory_limit = detail::non_negative_integer(value, key);
    } else if (key == "gpu_memory_headroom") {
      if (!value.is_null()) config.gpu_memory_headroom = detail::non_negative_integer(value, key);
    } else if (key == "max_batch_lookups") {
      config.max_batch_lookups = detail::positive_integer(value, key);
    } else if (key == "nonfinite_gradients") {
      config.nonfinite_gradients = parse_nonfinite(value);
    } else if (key == "max_norm") {
      if (!value.is_null()) config.max_norm = detail::finite_number(value, key);  // validate() checks > 0
    } else if (key == "norm_type") {
      config.norm_type = parse_norm_type(value);
    } else if (key == "dtype") {
      config.dtype = detail::dtype_from_policy(value);
    } else if (key == "rounding") {
      config.rounding = parse_rounding(value);
    } else if (key == "input_length" || key == "batch_input_shape") {
      check_shape_hint(value, key);  // shape hints of the layer's input: ignored, as Keras 3 does
    } else if (key == "activity_regularizer" || key == "quantization_config") {
      require_keras_default(key, value, value.is_null(), "null");
    } else if (key == "sparse") {
      require_keras_default(key, value, value.is_null() || value == false, "false");
    } else if (key == "lora_rank") {
      require_keras_default(key, value, value.is_null() || value == 0, "null");
    } else if (key == "lora_alpha") {
      if (!value.is_null()) detail::finite_number(value, key);  // meaningful only with a lora_rank
    } else {
      throw Error(Status::invalid_argument, fmt::format("unknown config key '{}'", key));
    }
  }
  EMBEDKIT_EXPECTS(has_input_dim, Status::invalid_argument, "config is missing the required key 'input_dim'");
  EMBEDKIT_EXPECTS(has_output_dim, Status::invalid_argument, "config is missing the required key 'output_dim'");
  config.validate();
  return config;
}

}  // namespace detail

void TableConfig::validate() const {
  EMBEDKIT_EXPECTS(input_dim > 0, Status::invalid_argument, "input_dim must be a positive integer, got {}", input_dim);
  EMBEDKIT_EXPECTS(output_dim > 0, Status::invalid_argument, "output_dim must be a positive integer, got {}",
                   output_dim);
  EMBEDKIT_EXPECTS(output_dim <= kMaxOutputDim, Status::invalid_argument, "output_dim must be at most {}, got {}",
                   kMaxOutputDim, output_dim);
  EMBEDKIT_EXPECTS(!padding_idx || (*padding_idx >= 0 && *padding_idx < input_dim), Status::invalid_argument,
                   "padding_idx must be in [0, input_dim) = [0, {}), got {}", input_dim, *padding_idx);
  optimizer.validate();
  EMBEDKIT_EXPECTS(max_batch_lookups > 0, Status::invalid_argument,
                   "max_batch_lookups must be a positive integer, got {}", max_batch_lookups);
  EMBEDKIT_EXPECTS(!max_norm || (std::isfinite(*max_norm) && *max_norm > 0), Status::invalid_argument,
                   "max_norm must be null or a positive finite number, got {}", *max_norm);
  EMBEDKIT_EXPECTS(dtype == DType::float32 || optimizer.kind != OptimizerKind::custom, Status::unsupported,
                   "a custom optimizer updates float32 rows; dtype '{}' takes a built-in optimizer", to_string(dtype));
  EMBEDKIT_EXPECTS(norm_type > 0, Status::invalid_argument, "norm_type must be a positive number or inf, got {}",
                   norm_type);
  const Initializer& init = embeddings_initializer;
  for (const auto& [field, value] : {std::pair{"minval", init.minval},
                                     {"maxval", init.maxval},
                                     {"mean", init.mean},
                                     {"stddev", init.stddev},
                                     {"value", init.value},
                                     {"scale", init.scale}}) {
    detail::require_float32(value, fmt::format("embeddings_initializer {}", field));
  }
  // A normal draw is mean + stddev·z: every value must fit, not only the two parameters.
  if (init.kind == InitializerKind::normal || init.kind == InitializerKind::truncated_normal) {
    const double z = init.kind == InitializerKind::normal ? detail::kLargestNormalDraw : detail::kTruncatedNormalBound;
    detail::require_float32(std::abs(init.mean) + z * init.stddev,
                            fmt::format("embeddings_initializer stddev {} with mean {} draws up to |mean| + {}·stddev, "
                                        "which",
                                        init.stddev, init.mean, z));
  }
  if (embeddings_regularizer) {
    detail::require_float32(embeddings_regularizer->l1, "embeddings_regularizer l1");
    detail::require_float32(embeddings_regularizer->l2, "embeddings_regularizer l2");
  }
  detail::require_float32(embeddings_constraint.max_value, "embeddings_constraint max_value");
  EMBEDKIT_EXPECTS(!(init.kind == InitializerKind::uniform && init.minval > init.maxval), Status::invalid_argument,
                   "embeddings_initializer minval must not exceed maxval, got minval {} > maxval {}", init.minval,
                   init.maxval);
  EMBEDKIT_EXPECTS(!(init.stddev < 0), Status::invalid_argument,
                   "embeddings_initializer stddev must be non-negative, got {}", init.stddev);
  EMBEDKIT_EXPECTS(!(init.kind == InitializerKind::variance_scaling && init.scale <= 0), Status::invalid_argument,
                   "embeddings_initializer scale must be positive, got {}", init.scale);
}

namespace detail {

nlohmann::json config_to_json(const TableConfig& config) {
  return {
      {"name", config.name},
      {"trainable", config.trainable},
      {"dtype", embedkit::to_string(config.dtype)},
      {"rounding", embedkit::to_string(config.rounding)},
      {"input_dim", config.input_dim},
      {"output_dim", config.output_dim},
      {"embeddings_initializer", detail::initializer_to_json(config.embeddings_initializer)},
      {"embeddings_regularizer", detail::regularizer_to_json(config.embeddings_regularizer)},
      {"embeddings_constraint", detail::constraint_to_json(config.embeddings_constraint)},
      {"seed", config.seed ? nlohmann::json(*config.seed) : nlohmann::json(nullptr)},
      {"mask_zero", config.mask_zero},
      {"padding_idx", config.padding_idx ? nlohmann::json(*config.padding_idx) : nlohmann::json(nullptr)},
      {"padding_reads", embedkit::to_string(config.padding_reads)},
      {"bounds_check", embedkit::to_string(config.bounds_check)},
      {"placement", embedkit::to_string(config.placement)},
      {"optimizer",
       config.optimizer.kind == OptimizerKind::custom ? nlohmann::json(nullptr) : optimizer_to_json(config.optimizer)},
      {"nonfinite_gradients", embedkit::to_string(config.nonfinite_gradients)},
      {"gpu_memory_limit",
       config.gpu_memory_limit ? nlohmann::json(*config.gpu_memory_limit) : nlohmann::json(nullptr)},
      {"gpu_memory_headroom",
       config.gpu_memory_headroom ? nlohmann::json(*config.gpu_memory_headroom) : nlohmann::json(nullptr)},
      {"max_batch_lookups", config.max_batch_lookups},
      {"max_norm", config.max_norm ? nlohmann::json(*config.max_norm) : nlohmann::json(nullptr)},
      // JSON has no infinity: the maximum norm is written as the string from_json reads.
      {"norm_type", std::isinf(config.norm_type) ? nlohmann::json("inf") : nlohmann::json(config.norm_type)},
  };
}

}  // namespace detail

const char* to_string(BoundsCheck mode) noexcept { return mode == BoundsCheck::zero_fill ? "zero_fill" : "error"; }

const char* to_string(NonFiniteGradients policy) noexcept {
  switch (policy) {
    case NonFiniteGradients::skip: return "skip";
    case NonFiniteGradients::apply: return "apply";
    case NonFiniteGradients::error: return "error";
  }
  return "skip";
}

const char* to_string(DType type) noexcept {
  switch (type) {
    case DType::float32: return "float32";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
  }
  return "float32";
}

const char* to_string(Rounding rounding) noexcept { return rounding == Rounding::nearest ? "nearest" : "stochastic"; }

const char* to_string(PaddingReads mode) noexcept { return mode == PaddingReads::row ? "row" : "zeros"; }

const char* to_string(PlacementPolicy policy) noexcept {
  switch (policy) {
    case PlacementPolicy::automatic: return "auto";
    case PlacementPolicy::cpu: return "cpu";
    case PlacementPolicy::cuda: return "cuda";
  }
  return "auto";
}

}  // namespace embedkit
