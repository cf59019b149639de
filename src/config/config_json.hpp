#pragma once
// Configs and optimizers to and from JSON values, for readers that hold them inside a larger
// document (a table config's "optimizer", a manifest's "config", a plan request): the document is
// parsed once, by parse_json_document, and no part of it is serialised to be parsed again.

#include <embedkit/config.hpp>
#include <embedkit/optimizer.hpp>

#include <nlohmann/json.hpp>

namespace embedkit::detail {

/// As OptimizerConfig::from_json, from a parsed value.
OptimizerConfig optimizer_from_json(const nlohmann::json& value);
/// As OptimizerConfig::to_json, as a value.
nlohmann::json optimizer_to_json(const OptimizerConfig& optimizer);

/// As TableConfig::from_json, from a parsed value.
TableConfig config_from_json(const nlohmann::json& value);
/// As TableConfig::to_json, as a value.
nlohmann::json config_to_json(const TableConfig& config);

}  // namespace embedkit::detail
