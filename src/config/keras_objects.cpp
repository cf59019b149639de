#include "config/keras_objects.hpp"

#include <embedkit/status.hpp>

#include "config/json_fields.hpp"
#include "core/expects.hpp"

#include <fmt/format.h>

#include <string>
#include <utility>

namespace embedkit::detail {
namespace {

constexpr double kKerasDefaultPenalty = 0.01;

std::string class_name_of(const nlohmann::json& object, std::string_view what) {
  EMBEDKIT_EXPECTS(object.contains("class_name"), Status::invalid_argument, "{} object has no 'class_name'", what);
  return string(object["class_name"], fmt::format("{} class_name", what));
}

// A Keras name string, or an object's class name and config (empty for a name).
std::pair<std::string, nlohmann::json> name_and_config(const nlohmann::json& value, std::string_view what,
                                                       std::string_view kind) {
  if (value.is_string()) return {value.get<std::string>(), nlohmann::json::object()};
  if (value.is_object()) return {class_name_of(value, what), keras_object_config(value, what)};
  throw Error(Status::invalid_argument,
              fmt::format("{} must be null, a Keras {} name or object, got {}", what, kind, json_repr(value)));
}

// Keras's axis for a rank-2 (input_dim, output_dim) matrix: 1 and -1 name the row.
void require_row_axis(const nlohmann::json& config, const std::string& class_name) {
  const std::int64_t axis = config.contains("axis") ? integer(config["axis"], "embeddings_constraint axis") : 0;
  if (axis == 1 || axis == -1) return;
  throw Error(Status::unsupported,
              fmt::format("embeddings_constraint {} with axis={} constrains each column over all input_dim "
                          "rows, which a sparse update cannot keep; embedkit constrains each embedding row: "
                          "use axis=1 (or -1)",
                          class_name, axis));
}

}  // namespace

void reject_unknown_keys(const nlohmann::json& object, std::string_view where,
                         std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (const std::string_view name : known) found = found || key == name;
    EMBEDKIT_EXPECTS(found, Status::invalid_argument, "unknown key '{}' in {}", key, where);
  }
}

nlohmann::json keras_object_config(const nlohmann::json& object, std::string_view what) {
  reject_unknown_keys(object, what, {"module", "class_name", "config", "registered_name"});
  const nlohmann::json config = object.value("config", nlohmann::json::object());
  EMBEDKIT_EXPECTS(config.is_object(), Status::invalid_argument, "{} config must be an object, got {}", what,
                   json_repr(config));
  return config;
}

std::optional<Regularizer> regularizer_from_json(const nlohmann::json& value) {
  constexpr std::string_view kWhat = "embeddings_regularizer";
  if (value.is_null()) return std::nullopt;
  const auto [name, config] = name_and_config(value, kWhat, "regularizer");
  Regularizer regularizer;
  const std::string where = fmt::format("{} config of {}", kWhat, name);
  // The binding is passed, not captured: clang before 16 cannot capture structured bindings.
  const auto penalty = [&kWhat](const nlohmann::json& keras_config, const char* key) {
    return keras_config.contains(key) ? finite_number(keras_config[key], fmt::format("{} {}", kWhat, key))
                                      : kKerasDefaultPenalty;
  };
  if (name == "L1" || name == "l1") {
    reject_unknown_keys(config, where, {"l1"});
    regularizer.l1 = penalty(config, "l1");
  } else if (name == "L2" || name == "l2") {
    reject_unknown_keys(config, where, {"l2"});
    regularizer.l2 = penalty(config, "l2");
  } else if (name == "L1L2" || name == "l1l2" || name == "l1_l2") {
    reject_unknown_keys(config, where, {"l1", "l2"});
    // Keras's L1L2() defaults both to 0; tf-keras's l1_l2() function to 0.01 each.
    const double fallback = name == "l1_l2" ? kKerasDefaultPenalty : 0.0;
    regularizer.l1 = config.contains("l1") ? finite_number(config["l1"], "embeddings_regularizer l1") : fallback;
    regularizer.l2 = config.contains("l2") ? finite_number(config["l2"], "embeddings_regularizer l2") : fallback;
  } else if (name == "OrthogonalRegularizer" || name == "orthogonal_regularizer") {
    throw Error(Status::unsupported,
                fmt::format("{} '{}' is not supported by embedkit: it couples all rows", kWhat, name));
  } else {
    throw Error(Status::invalid_argument, fmt::format("unknown {} '{}' (expected L1, L2 or L1L2)", kWhat, name));
  }
  EMBEDKIT_EXPECTS(!(regularizer.l1 < 0 || regularizer.l2 < 0), Status::invalid_argument,
                   "{} penalties must be non-negative, got l1 {} and l2 {}", kWhat, regularizer.l1, regularizer.l2);
  return regularizer;
}

nlohmann::json regularizer_to_json(const std::optional<Regularizer>& regularizer) {
  if (!regularizer) return nullptr;
  return {{"module", "keras.regularizers"},
          {"class_name", "L1L2"},
          {"config", {{"l1", regularizer->l1}, {"l2", regularizer->l2}}},
          {"registered_name", nullptr}};
}

Constraint constraint_from_json(const nlohmann::json& value) {
  constexpr std::string_view kWhat = "embeddings_constraint";
  if (value.is_null()) return Constraint{};
  const auto [name, config] = name_and_config(value, kWhat, "constraint");
  const std::string where = fmt::format("{} config of {}", kWhat, name);
  Constraint constraint;
  if (name == "MaxNorm" || name == "max_norm") {
    reject_unknown_keys(config, where, {"max_value", "axis"});
    require_row_axis(config, "MaxNorm");
    constraint.kind = ConstraintKind::max_norm;
    if (config.contains("max_value"))
      constraint.max_value = finite_number(config["max_value"], "embeddings_constraint max_value");
    EMBEDKIT_EXPECTS(!(constraint.max_value < 0), Status::invalid_argument,
                     "embeddings_constraint max_value must be non-negative, got {}", constraint.max_value);
  } else if (name == "UnitNorm" || name == "unit_norm") {
    reject_unknown_keys(config, where, {"axis"});
    require_row_axis(config, "UnitNorm");
    constraint.kind = ConstraintKind::unit_norm;
  } else if (name == "NonNeg" || name == "non_neg") {
    reject_unknown_keys(config, where, {});
    constraint.kind = ConstraintKind::non_neg;
  } else if (name == "MinMaxNorm" || name == "min_max_norm") {
    throw Error(Status::unsupported, fmt::format("{} '{}' is not supported by embedkit", kWhat, name));
  } else {
    throw Error(Status::invalid_argument,
                fmt::format("unknown {} '{}' (expected MaxNorm, UnitNorm or NonNeg)", kWhat, name));
  }
  return constraint;
}

nlohmann::json constraint_to_json(const Constraint& constraint) {
  const auto keras = [](const char* class_name, nlohmann::json config) {
    return nlohmann::json{{"module", "keras.constraints"},
                          {"class_name", class_name},
                          {"config", std::move(config)},
                          {"registered_name", nullptr}};
  };
  switch (constraint.kind) {
    case ConstraintKind::none: return nullptr;
    case ConstraintKind::max_norm: return keras("MaxNorm", {{"max_value", constraint.max_value}, {"axis", 1}});
    case ConstraintKind::unit_norm: return keras("UnitNorm", {{"axis", 1}});
    case ConstraintKind::non_neg: return keras("NonNeg", nlohmann::json::object());
  }
  return nullptr;
}

DType dtype_from_policy(const nlohmann::json& value) {
  std::string name;
  if (value.is_null()) return DType::float32;  // Keras: null means the global policy, float32 by default
  if (value.is_string()) {
    name = value.get<std::string>();
  } else if (value.is_object()) {
    const std::string class_name = class_name_of(value, "dtype");
    // The quantized policies (QuantizedDTypePolicy, Int4DTypePolicy...) hold int8/int4 rows, which
    // a trainable table does not take.
    EMBEDKIT_EXPECTS(class_name == "DTypePolicy" || class_name == "FloatDTypePolicy", Status::unsupported,
                     "dtype policy '{}' is not supported: embedkit tables train float32, float16 or bfloat16 rows",
                     class_name);
    const nlohmann::json config = keras_object_config(value, "dtype");
    reject_unknown_keys(config, "dtype config", {"name"});
    name = config.contains("name") ? string(config["name"], "dtype name") : "float32";
  } else {
    throw Error(Status::invalid_argument,
                fmt::format("dtype must be a string or a Keras DTypePolicy object, got {}", json_repr(value)));
  }
  // A mixed policy computes in the narrow type but keeps float32 variables: the rows stay float32.
  if (name == "float32" || name == "mixed_float16" || name == "mixed_bfloat16") return DType::float32;
  if (name == "float16") return DType::float16;
  if (name == "bfloat16") return DType::bfloat16;
  throw Error(Status::unsupported,
              fmt::format("dtype '{}' is not supported: embedkit tables are float32, float16 or bfloat16 (or a "
                          "mixed_float16 / mixed_bfloat16 policy, whose rows are float32)",
                          name));
}

}  // namespace embedkit::detail
