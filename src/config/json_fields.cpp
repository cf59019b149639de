#include "config/json_fields.hpp"

#include <embedkit/status.hpp>

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace embedkit::detail {
namespace {

// Appends `value` as compact JSON until `text` passes `limit` bytes, so a message about a huge value
// costs no more than its excerpt. Recursion is bounded by the parser's depth limit.
void append_repr(const nlohmann::json& value, std::string& text, std::size_t limit) {
  const auto room = [&] { return text.size() <= limit; };
  if (value.is_array()) {
    text += '[';
    for (auto element = value.begin(); element != value.end() && room(); ++element) {
      if (element != value.begin()) text += ',';
      append_repr(*element, text, limit);
    }
    text += ']';
  } else if (value.is_object()) {
    text += '{';
    for (auto member = value.begin(); member != value.end() && room(); ++member) {
      if (member != value.begin()) text += ',';
      append_repr(member.key(), text, limit);
      text += ':';
      append_repr(member.value(), text, limit);
    }
    text += '}';
  } else if (value.is_string()) {
    // A cut may split a UTF-8 sequence: replaced rather than thrown over.
    text += nlohmann::json(value.get_ref<const std::string&>().substr(0, limit + 1))
                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    text += value.dump();
  }
}

[[noreturn]] void wrong(std::string_view name, std::string_view expected, const nlohmann::json& value) {
  throw Error(Status::invalid_argument, fmt::format("{} must be {}, got {}", name, expected, json_repr(value)));
}

}  // namespace

std::string json_repr(const nlohmann::json& value) {
  constexpr std::size_t kMaxRepr = 80;
  std::string text;
  append_repr(value, text, kMaxRepr);
  if (text.size() > kMaxRepr) text = text.substr(0, kMaxRepr) + "...";
  return text;
}

std::int64_t positive_integer(const nlohmann::json& value, std::string_view name) {
  if (value.is_number_integer() && !value.is_number_unsigned() && value.get<std::int64_t>() > 0) {
    return value.get<std::int64_t>();
  }
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
      value.get<std::uint64_t>() > 0) {
    return static_cast<std::int64_t>(value.get<std::uint64_t>());
  }
  wrong(name, "a positive integer", value);
}

std::uint64_t non_negative_integer(const nlohmann::json& value, std::string_view name) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  }
  wrong(name, "a non-negative integer", value);
}

std::int64_t integer(const nlohmann::json& value, std::string_view name) {
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    wrong(name, "an integer that fits int64", value);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  wrong(name, "an integer", value);
}

double finite_number(const nlohmann::json& value, std::string_view name) {
  if (value.is_number() && std::isfinite(value.get<double>())) return value.get<double>();
  wrong(name, "a finite number", value);
}

bool boolean(const nlohmann::json& value, std::string_view name) {
  if (value.is_boolean()) return value.get<bool>();
  wrong(name, "a boolean", value);
}

std::string string(const nlohmann::json& value, std::string_view name) {
  if (value.is_string()) return value.get<std::string>();
  wrong(name, "a string", value);
}

}  // namespace embedkit::detail
