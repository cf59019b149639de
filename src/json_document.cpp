#include "json_document.hpp"

#include <fmt/format.h>

namespace embedkit::detail {
namespace {

// Brackets count only outside strings, so a scan that skips strings measures the nesting exactly,
// without the recursion it guards against.
void check_depth(std::string_view text, std::string_view what, Status status) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t at = 0; at < text.size(); ++at) {
    const char c = text[at];
    if (in_string) {
      if (c == '\\') {
        ++at;  // the escaped character, a quote included
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw Error(status, fmt::format("{} nests arrays and objects deeper than {} levels (byte {})", what,
                                        kMaxJsonDepth, at));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

}  // namespace

nlohmann::json parse_json_document(std::string_view text, std::string_view what, Status status) {
  check_depth(text, what, status);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(status, fmt::format("{} is not valid JSON: {}", what, e.what()));
  }
}

}  // namespace embedkit::detail
