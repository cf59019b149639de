#pragma once
// Parsing untrusted JSON text (configs, checkpoint manifests) with a bound on its nesting.

#include <embedkit/status.hpp>

#include <nlohmann/json.hpp>

#include <string_view>

namespace embedkit::detail {

/// The deepest nesting of arrays and objects a document may have: far more than any config or
/// manifest uses, and far less than the recursive parts of nlohmann::json (dump, copy, compare)
/// can take on a thread's stack.
constexpr int kMaxJsonDepth = 64;

/// The JSON document in `text`, named `what` in messages. Throws Error(`status`):
/// `WHAT nests arrays and objects deeper than 64 levels (byte 1234)` before parsing, or
/// `WHAT is not valid JSON: ...` with the parser's reason (numbers out of a double's range included).
nlohmann::json parse_json_document(std::string_view text, std::string_view what, Status status);

}  // namespace embedkit::detail
