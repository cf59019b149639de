#pragma once
// Parsing untrusted JSON text (configs, checkpoint manifests) with a bound on its nesting.

#include <embedkit/status.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string_view>

namespace embedkit::detail {

/// The deepest nesting of arrays and objects a document may have: far more than any config or
/// manifest uses, and far less than the recursive parts of nlohmann::json (dump, copy, compare)
/// can take on a thread's stack.
constexpr int kMaxJsonDepth = 64;
/// The longest key a document may have: far more than any key of a config or manifest.
constexpr std::size_t kMaxJsonKeyBytes = 256;

/// The JSON document in `text`, named `what` in messages: the one parser of every JSON text a caller
/// gives (configs, optimizer and plan requests, manifests). Throws Error(`status`):
/// `WHAT nests arrays and objects deeper than 64 levels (byte 1234)` before parsing,
/// `WHAT has the key 'seed' twice at /optimizer` (nlohmann would keep the last silently), a key
/// longer than 256 bytes,
/// `WHAT: the integer 18446744073709551616 at /seed is out of range (it does not fit 64 bits)`, or
/// `WHAT is not valid JSON: ...` with the parser's reason (numbers out of a double's range included).
/// Messages quote at most a short excerpt of the input, however long it is.
nlohmann::json parse_json_document(std::string_view text, std::string_view what, Status status);

}  // namespace embedkit::detail
