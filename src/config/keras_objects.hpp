#pragma once
// Keras's serialized regularizers, constraints and dtype policies: a name string, or an object
// {"module", "class_name", "config", "registered_name"} (tf-keras omits module and registered_name).

#include <embedkit/config.hpp>
#include <embedkit/dtype.hpp>

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <optional>
#include <string_view>

namespace embedkit::detail {

/// null, "l1", "l2", "l1_l2" or an L1 / L2 / L1L2 object. Throws unsupported for other Keras
/// regularizers (OrthogonalRegularizer), invalid_argument for ill-formed ones.
std::optional<Regularizer> regularizer_from_json(const nlohmann::json& value);
nlohmann::json regularizer_to_json(const std::optional<Regularizer>& regularizer);

/// null, "max_norm", "unit_norm", "non_neg" or a MaxNorm / UnitNorm / NonNeg object. Keras's
/// default axis 0 (per column) is refused as unsupported: embedkit constrains rows (axis 1).
Constraint constraint_from_json(const nlohmann::json& value);
nlohmann::json constraint_to_json(const Constraint& constraint);

/// The rows' type of a Keras dtype: a name ("float32", "float16", "bfloat16"; "mixed_float16" and
/// "mixed_bfloat16" keep float32 variables, so float32) or a DTypePolicy / FloatDTypePolicy object
/// naming one; null is float32. Another name or policy is unsupported, a malformed value invalid.
DType dtype_from_policy(const nlohmann::json& value);

/// The object's "config" member (an empty object when absent), after checking the object's keys.
nlohmann::json keras_object_config(const nlohmann::json& object, std::string_view what);

/// Throws invalid_argument naming the first key of `object` not in `known`.
void reject_unknown_keys(const nlohmann::json& object, std::string_view where,
                         std::initializer_list<std::string_view> known);

}  // namespace embedkit::detail
