#pragma once
// Keras's two spellings of an initializer: a name string, or an object
// {"module", "class_name", "config", "registered_name"} (tf-keras omits module and registered_name).

#include <embedkit/initializer.hpp>

#include <nlohmann/json.hpp>

namespace embedkit::detail {

/// Reads either spelling. Throws invalid_argument for unknown names or keys and ill-typed values,
/// unsupported for Orthogonal and Identity.
Initializer initializer_from_json(const nlohmann::json& value);

/// The Keras 3 object spelling, which Keras's `initializers.deserialize` reads as it is.
nlohmann::json initializer_to_json(const Initializer& init);

}  // namespace embedkit::detail
