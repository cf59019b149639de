#pragma once
// Typed reads of JSON config values with Keras's error wording, shared by every config parser.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace embedkit::detail {

/// The value as JSON text, for messages: 0, "3", true, 3.7.
std::string json_repr(const nlohmann::json& value);

/// A JSON integer > 0 (no floats, no booleans, no strings): `NAME must be a positive integer, got V`.
std::int64_t positive_integer(const nlohmann::json& value, std::string_view name);
/// A JSON integer >= 0 that fits uint64.
std::uint64_t non_negative_integer(const nlohmann::json& value, std::string_view name);
/// Any JSON integer that fits int64.
std::int64_t integer(const nlohmann::json& value, std::string_view name);
/// A finite JSON number (integers included).
double finite_number(const nlohmann::json& value, std::string_view name);
bool boolean(const nlohmann::json& value, std::string_view name);
std::string string(const nlohmann::json& value, std::string_view name);

}  // namespace embedkit::detail
