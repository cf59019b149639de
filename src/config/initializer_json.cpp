#include "config/initializer_json.hpp"

#include <embedkit/status.hpp>

#include "config/json_fields.hpp"
#include "config/keras_objects.hpp"

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace embedkit::detail {
namespace {

constexpr std::string_view kWhat = "embeddings_initializer";

FanMode fan_mode(const nlohmann::json& value) {
  const std::string mode = string(value, "embeddings_initializer mode");
  if (mode == "fan_in") return FanMode::fan_in;
  if (mode == "fan_out") return FanMode::fan_out;
  if (mode == "fan_avg") return FanMode::fan_avg;
  throw Error(Status::invalid_argument, fmt::format("embeddings_initializer mode must be one of 'fan_in', 'fan_out', "
                                                    "'fan_avg', got {}",
                                                    json_repr(value)));
}

ScalingDistribution distribution(const nlohmann::json& value) {
  const std::string name = string(value, "embeddings_initializer distribution");
  if (name == "truncated_normal") return ScalingDistribution::truncated_normal;
  if (name == "untruncated_normal" || name == "normal") return ScalingDistribution::untruncated_normal;
  if (name == "uniform") return ScalingDistribution::uniform;
  throw Error(Status::invalid_argument,
              fmt::format("embeddings_initializer distribution must be one of 'truncated_normal', "
                          "'untruncated_normal', 'uniform', got {}",
                          json_repr(value)));
}

const char* fan_mode_name(FanMode mode) {
  switch (mode) {
    case FanMode::fan_in: return "fan_in";
    case FanMode::fan_out: return "fan_out";
    case FanMode::fan_avg: return "fan_avg";
  }
  return "fan_in";
}

const char* distribution_name(ScalingDistribution d) {
  switch (d) {
    case ScalingDistribution::truncated_normal: return "truncated_normal";
    case ScalingDistribution::untruncated_normal: return "untruncated_normal";
    case ScalingDistribution::uniform: return "uniform";
  }
  return "truncated_normal";
}

Initializer from_object(const nlohmann::json& object) {
  const nlohmann::json config = keras_object_config(object, kWhat);
  if (!object.contains("class_name")) {
    throw Error(Status::invalid_argument, "embeddings_initializer object has no 'class_name'");
  }
  Initializer init = Initializer::from_name(string(object["class_name"], "embeddings_initializer class_name"));
  const std::string where = fmt::format("embeddings_initializer config of {}", init.name);
  switch (init.kind) {
    case InitializerKind::uniform: reject_unknown_keys(config, where, {"minval", "maxval", "seed"}); break;
    case InitializerKind::normal:
    case InitializerKind::truncated_normal: reject_unknown_keys(config, where, {"mean", "stddev", "seed"}); break;
    case InitializerKind::constant: reject_unknown_keys(config, where, {"value"}); break;
    case InitializerKind::variance_scaling:
      if (init.name == "VarianceScaling" || init.name == "variance_scaling") {
        reject_unknown_keys(config, where, {"scale", "mode", "distribution", "seed", "input_axes", "output_axes"});
      } else {
        reject_unknown_keys(config, where, {"seed", "input_axes", "output_axes"});
      }
      break;
  }
  for (const auto& [key, value] : config.items()) {
    const std::string name = fmt::format("embeddings_initializer {}", key);
    if (key == "seed") {
      if (!value.is_null()) init.seed = non_negative_integer(value, name);
    } else if (key == "minval") {
      init.minval = finite_number(value, name);
    } else if (key == "maxval") {
      init.maxval = finite_number(value, name);
    } else if (key == "mean") {
      init.mean = finite_number(value, name);
    } else if (key == "stddev") {
      init.stddev = finite_number(value, name);
    } else if (key == "value") {
      init.value = finite_number(value, name);
    } else if (key == "scale") {
      init.scale = finite_number(value, name);
    } else if (key == "mode") {
      init.mode = fan_mode(value);
    } else if (key == "distribution") {
      init.distribution = distribution(value);
    } else if ((key == "input_axes" || key == "output_axes") && !value.is_null()) {
      // Keras 3 computes fans over these axes; for a (input_dim, output_dim) table the defaults
      // (null) give fan_in = input_dim and fan_out = output_dim, the only reading embedkit has.
      throw Error(Status::unsupported,
                  fmt::format("embeddings_initializer {} = {} is not supported: embedkit's fans are "
                              "fan_in = input_dim and fan_out = output_dim",
                              key, json_repr(value)));
    }
  }
  return init;
}

}  // namespace

Initializer initializer_from_json(const nlohmann::json& value) {
  if (value.is_string()) return Initializer::from_name(value.get<std::string>());
  if (value.is_object()) return from_object(value);
  throw Error(Status::invalid_argument,
              fmt::format("{} must be a Keras initializer name or object, got {}", kWhat, json_repr(value)));
}

nlohmann::json initializer_to_json(const Initializer& init) {
  nlohmann::json config = nlohmann::json::object();
  std::string class_name;
  switch (init.kind) {
    case InitializerKind::uniform:
      class_name = "RandomUniform";
      config = {{"minval", init.minval}, {"maxval", init.maxval}};
      break;
    case InitializerKind::normal:
    case InitializerKind::truncated_normal:
      class_name = init.kind == InitializerKind::normal ? "RandomNormal" : "TruncatedNormal";
      config = {{"mean", init.mean}, {"stddev", init.stddev}};
      break;
    case InitializerKind::constant:
      class_name = "Constant";
      config = {{"value", init.value}};
      break;
    case InitializerKind::variance_scaling:
      class_name = "VarianceScaling";
      config = {{"scale", init.scale},
                {"mode", fan_mode_name(init.mode)},
                {"distribution", distribution_name(init.distribution)}};
      break;
  }
  if (init.kind != InitializerKind::constant) {
    config["seed"] = init.seed ? nlohmann::json(*init.seed) : nlohmann::json(nullptr);
  }
  return {
      {"module", "keras.initializers"}, {"class_name", class_name}, {"config", config}, {"registered_name", nullptr}};
}

}  // namespace embedkit::detail
