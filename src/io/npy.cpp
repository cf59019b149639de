#include "io/npy.hpp"

#include <embedkit/detail/stored_row.hpp>
#include <embedkit/status.hpp>

#include "core/shape.hpp"
#include "io/files.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

namespace embedkit::detail {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
static_assert(std::endian::native == std::endian::little, "embedkit writes .npy files as little-endian");

[[noreturn]] void malformed(std::string_view name, const std::string& what) {
  throw Error(Status::io_error, fmt::format("{}: {}", name, what));
}

// Where the header dict of a .npy file lies, from its first 10 or 12 bytes (`head`), for a file of
// `file_size` bytes.
struct Preamble {
  std::size_t header_start = 0;
  std::size_t header_length = 0;
};

Preamble preamble(std::string_view head, std::uint64_t file_size, std::string_view name) {
  if (head.size() < 10 || head.substr(0, 6) != kMagic) malformed(name, "not a .npy file (wrong magic bytes)");
  const auto major = static_cast<unsigned char>(head[6]);
  Preamble p;
  if (major == 1) {
    p.header_length =
        static_cast<unsigned char>(head[8]) | static_cast<std::size_t>(static_cast<unsigned char>(head[9])) << 8;
    p.header_start = 10;
  } else if (major == 2 || major == 3) {
    if (head.size() < 12) malformed(name, "the .npy header is truncated");
    for (int k = 3; k >= 0; --k) p.header_length = p.header_length << 8 | static_cast<unsigned char>(head[8 + k]);
    p.header_start = 12;
  } else {
    malformed(name, fmt::format(".npy format version {} is not supported (1, 2 or 3)", major));
  }
  if (p.header_length > file_size - p.header_start) malformed(name, "the .npy header is truncated");
  return p;
}

// The header dict, parsed as the Python literal it is: `{'descr': '<f4', 'fortran_order': False,
// 'shape': (3, 4), }` in any order and spacing Python reads, with exactly these three keys, each
// once (as numpy.load requires). Searching the text for a key would find it inside another value.
struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  Header parse() {
    static constexpr std::array<std::string_view, 3> kKeys = {"descr", "fortran_order", "shape"};
    Header header;
    std::array<bool, 3> seen = {false, false, false};
    expect('{');
    while (skip_space() != '}') {
      const std::string key = string_literal();
      const auto k = static_cast<std::size_t>(std::find(kKeys.begin(), kKeys.end(), key) - kKeys.begin());
      if (k == kKeys.size()) fail(fmt::format("has the key '{}', not one of 'descr', 'fortran_order', 'shape'", key));
      if (seen[k]) fail(fmt::format("has the key '{}' twice", key));
      seen[k] = true;
      expect(':');
      if (k == 0) header.descr = string_literal();
      if (k == 1) header.fortran_order = boolean(key);
      if (k == 2) header.shape = tuple(key);
      if (skip_space() != ',') break;
      ++at_;
    }
    expect('}');
    skip_space();
    if (at_ != text_.size()) fail(fmt::format("has {} after its closing brace", detail_at()));
    for (std::size_t k = 0; k < kKeys.size(); ++k) {
      if (!seen[k]) fail(fmt::format("has no '{}'", kKeys[k]));
    }
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { malformed(name_, "the .npy header " + what); }

  std::string detail_at() const { return fmt::format("'{}' at byte {}", text_.substr(at_, 16), at_); }

  // The next character that is not white space, or '\0' at the end.
  char skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
    return at_ < text_.size() ? text_[at_] : '\0';
  }

  void expect(char c) {
    if (skip_space() != c)
      fail(fmt::format("is not a dict literal: '{}' expected, found {}", c,
                       at_ < text_.size() ? detail_at() : "the end"));
    ++at_;
  }

  std::string string_literal() {
    const char quote = skip_space();
    if (quote != '\'' && quote != '"')
      fail(fmt::format("is not a dict literal: a string expected, found {}", detail_at()));
    std::string value;
    for (++at_; at_ < text_.size() && text_[at_] != quote; ++at_) {
      if (text_[at_] == '\\' && at_ + 1 < text_.size()) ++at_;  // the escaped character as itself
      value.push_back(text_[at_]);
    }
    if (at_ == text_.size()) fail("has a string that is not closed");
    ++at_;
    return value;
  }

  bool boolean(const std::string& key) {
    skip_space();
    for (const auto& [word, value] : {std::pair<std::string_view, bool>{"True", true}, {"False", false}}) {
      if (text_.substr(at_, word.size()) == word) {
        at_ += word.size();
        return value;
      }
    }
    fail(fmt::format("'{}' is {}, not True or False", key, detail_at()));
  }

  // A tuple of non-negative integers: `()`, `(3,)`, `(3, 4)`, `(3, 4,)`; `(3)` is an int in Python.
  std::vector<std::int64_t> tuple(const std::string& key) {
    if (skip_space() != '(') {
      const std::size_t end = text_.find_first_of(",}", at_);
      malformed(name_, fmt::format("{} {} is not a tuple", key,
                                   text_.substr(at_, end == std::string_view::npos ? end : end - at_)));
    }
    const std::size_t close = text_.find(')', at_);
    if (close == std::string_view::npos) malformed(name_, fmt::format("the .npy header's {} is not closed", key));
    const std::string_view written = text_.substr(at_, close + 1 - at_);
    ++at_;
    std::vector<std::int64_t> values;
    bool comma = false;
    while (skip_space() != ')') {
      std::int64_t value = 0;
      const std::size_t begin = at_;
      for (; at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9'; ++at_) {
        if (value > (std::numeric_limits<std::int64_t>::max() - 9) / 10) malformed(name_, "a .npy dimension overflows");
        value = value * 10 + (text_[at_] - '0');
      }
      if (at_ == begin) malformed(name_, fmt::format("the .npy {} {} is not a tuple of integers", key, written));
      values.push_back(value);
      comma = skip_space() == ',';
      if (!comma) break;
      ++at_;
    }
    expect(')');
    if (values.size() == 1 && !comma) malformed(name_, fmt::format("{} {} is not a tuple", key, written));
    return values;
  }

  std::string_view text_;
  std::string_view name_;
  std::size_t at_ = 0;
};

// The number of elements of `shape` and their bytes as `type`, named as `name`'s.
std::uint64_t data_bytes(const std::vector<std::int64_t>& shape, std::string_view name, DType type) {
  try {
    return static_cast<std::uint64_t>(checked_numel(shape, "the array", dtype_bytes(type))) * dtype_bytes(type);
  } catch (const Error& e) {
    malformed(name, e.what());
  }
}

// The one check of a payload's size against a shape, made before reading and after.
void check_payload(const std::vector<std::int64_t>& shape, std::uint64_t payload, std::string_view name, DType type) {
  const std::uint64_t needed = data_bytes(shape, name, type);
  if (payload != needed) {
    malformed(name,
              fmt::format("shape {} needs {} bytes of data, the file holds {}", format_shape(shape), needed, payload));
  }
}

// The largest header read: numpy writes a float32 matrix's header in well under a kilobyte.
constexpr std::uint64_t kMaxHeaderBytes = 1 << 20;

}  // namespace

const char* npy_descr(DType type) {
  switch (type) {
    case DType::float16: return "<f2";
    case DType::bfloat16: return "<u2";
    case DType::float32: break;
  }
  return "<f4";
}

std::string npy_bytes(const float* values, const std::vector<std::int64_t>& shape) {
  return npy_bytes(values, DType::float32, shape);
}

std::string npy_bytes(const void* values, DType type, const std::vector<std::int64_t>& shape) {
  std::string dims;
  for (const std::int64_t extent : shape) dims += fmt::format("{}, ", extent);
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", npy_descr(type), dims);
  // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, then \\n.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes(kMagic);
  bytes.push_back('\x01');
  bytes.push_back('\x00');
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes += header;
  const auto count = static_cast<std::size_t>(checked_numel(shape, "npy array", dtype_bytes(type)));
  bytes.append(static_cast<const char*>(values), count * dtype_bytes(type));
  return bytes;
}

NpyArray parse_npy(std::string_view bytes, std::string_view name) { return parse_npy(bytes, name, DType::float32); }

NpyArray parse_npy(std::string_view bytes, std::string_view name, DType type) {
  const Preamble p = preamble(bytes.substr(0, 12), bytes.size(), name);
  const Header header = HeaderParser(bytes.substr(p.header_start, p.header_length), name).parse();
  if (header.descr != npy_descr(type)) {
    malformed(name, fmt::format("dtype '{}' is not {} ('{}')", header.descr, to_string(type), npy_descr(type)));
  }
  if (header.fortran_order) malformed(name, "Fortran-ordered arrays are not supported");
  const std::size_t payload = bytes.size() - p.header_start - p.header_length;
  check_payload(header.shape, payload, name, type);
  NpyArray array;
  array.shape = header.shape;
  const std::size_t count = payload / dtype_bytes(type);
  array.values.resize(count);
  const char* data = bytes.data() + p.header_start + p.header_length;
  with_dtype(type, [&](auto tag) {
    using T = decltype(tag);
    for (std::size_t k = 0; k < count; ++k) {
      T value;
      std::memcpy(&value, data + k * sizeof(T), sizeof(T));
      array.values[k] = widen(value);
    }
  });
  return array;
}

std::string read_npy_file(const std::string& path, std::string_view name, const std::vector<std::int64_t>* shape,
                          const std::function<void(const std::vector<std::int64_t>&)>& accept_shape, DType type) {
  const InputFile file(path);
  const Preamble p = preamble(file.read(0, 12), file.size(), name);
  if (p.header_length > kMaxHeaderBytes) {
    malformed(name, fmt::format("the .npy header of {} bytes is longer than the {} a float32 array needs",
                                p.header_length, kMaxHeaderBytes));
  }
  Header header;
  if (shape == nullptr) {
    header = HeaderParser(file.read(p.header_start, p.header_length), name).parse();
    shape = &header.shape;
  }
  check_payload(*shape, file.size() - p.header_start - p.header_length, name, type);
  if (shape == &header.shape && accept_shape) accept_shape(header.shape);
  return file.read(0, file.size());
}

}  // namespace embedkit::detail
