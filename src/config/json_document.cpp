#include "config/json_document.hpp"

#include <fmt/format.h>

#include <cctype>
#include <string>
#include <vector>

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

// Builds the document as nlohmann's own DOM parser does, but refuses what that one lets through:
// a key given twice (the last one would silently win) and an integer literal that does not fit 64
// bits (nlohmann reads it as the nearest double, so the value used is not the value written).
class GuardedBuilder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  GuardedBuilder(nlohmann::json& root, std::string_view what, Status status)
      : root_(root), what_(what), status_(status) {}

  bool null() override { return put(nullptr); }
  bool boolean(bool value) override { return put(value); }
  bool number_integer(number_integer_t value) override { return put(value); }
  bool number_unsigned(number_unsigned_t value) override { return put(value); }
  bool number_float(number_float_t value, const string_t& written) override {
    // Without a fraction or an exponent it was an integer, too long for int64 and uint64 alike.
    if (written.find_first_of(".eE") == std::string::npos) {
      throw Error(status_, fmt::format("{}: the integer {}{} is out of range (it does not fit 64 bits)", what_,
                                       excerpt(written), where()));
    }
    return put(value);
  }
  bool string(string_t& value) override { return put(std::move(value)); }
  bool binary(binary_t& value) override { return put(std::move(value)); }
  bool start_object(std::size_t) override { return open(nlohmann::json::value_t::object); }
  bool start_array(std::size_t) override { return open(nlohmann::json::value_t::array); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& name) override {
    Level& level = open_.back();
    // Messages quote keys ("unknown config key '...'"): no key of any document we read comes near.
    if (name.size() > kMaxJsonKeyBytes) {
      throw Error(status_, fmt::format("{} has a key of {} bytes{} (keys are at most {}): '{}'", what_, name.size(),
                                       where(open_.size() - 1), kMaxJsonKeyBytes, excerpt(name, 40)));
    }
    if (level.container->contains(name)) {
      throw Error(status_, fmt::format("{} has the key '{}' twice{}", what_, excerpt(name), where(open_.size() - 1)));
    }
    level.segment = name;
    next_member_ = &(*level.container)[name];
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    // nlohmann's message quotes the last token whole, which may be most of the input.
    throw Error(status_, fmt::format("{} is not valid JSON: {} (byte {})", what_, excerpt(e.what(), 200), position));
  }

 private:
  struct Level {
    nlohmann::json* container;
    std::string segment;  // the member being read, for messages (arrays: set when an element opens)
  };

  template <class Value>
  nlohmann::json* place(Value&& value) {
    if (open_.empty()) {
      root_ = nlohmann::json(std::forward<Value>(value));
      return &root_;
    }
    Level& level = open_.back();
    if (level.container->is_array()) {
      level.segment = std::to_string(level.container->size());
      level.container->emplace_back(std::forward<Value>(value));
      return &level.container->back();
    }
    *next_member_ = nlohmann::json(std::forward<Value>(value));
    return next_member_;
  }
  template <class Value>
  bool put(Value&& value) {
    place(std::forward<Value>(value));
    return true;
  }
  bool open(nlohmann::json::value_t type) {
    // Pointers to open containers stay valid: a container gains members only while it is the
    // innermost open one, so no open container's storage moves.
    open_.push_back(Level{place(type), {}});
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  // " at /optimizer/config/momentum": where in the document the first `levels` open containers are.
  std::string where(std::size_t levels) const {
    std::string pointer;
    for (std::size_t i = 0; i < levels; ++i) pointer += "/" + excerpt(open_[i].segment, 40);
    return pointer.empty() ? std::string() : " at " + excerpt(pointer, 200);
  }
  // The same for the value being read now.
  std::string where() const {
    if (open_.empty()) return {};
    const Level& innermost = open_.back();
    std::string pointer = where(open_.size() - 1);
    const std::string segment =
        innermost.container->is_array() ? std::to_string(innermost.container->size()) : innermost.segment;
    return (pointer.empty() ? " at " : pointer) + "/" + excerpt(segment, 40);
  }

  static std::string excerpt(std::string_view text, std::size_t limit = 80) {
    return text.size() <= limit ? std::string(text) : std::string(text.substr(0, limit)) + "...";
  }

  nlohmann::json& root_;
  std::string_view what_;
  Status status_;
  std::vector<Level> open_;
  nlohmann::json* next_member_ = nullptr;
};

}  // namespace

nlohmann::json parse_json_document(std::string_view text, std::string_view what, Status status) {
  check_depth(text, what, status);
  nlohmann::json document;
  GuardedBuilder builder(document, what, status);
  nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  return document;
}

}  // namespace embedkit::detail
