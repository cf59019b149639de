#include "npy.hpp"

#include <embedkit/status.hpp>

#include "../shape.hpp"

#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <limits>

namespace embedkit::detail {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
static_assert(std::endian::native == std::endian::little, "embedkit writes .npy files as little-endian");

[[noreturn]] void malformed(std::string_view name, const std::string& what) {
  throw Error(Status::io_error, fmt::format("{}: {}", name, what));
}

// The value of `key` in a NumPy header dict, as written: "'<f4'", "False", "(3, 4)".
std::string_view header_value(std::string_view header, std::string_view key, std::string_view name) {
  const std::string quoted = fmt::format("'{}':", key);
  const std::size_t at = header.find(quoted);
  if (at == std::string_view::npos) malformed(name, fmt::format("the .npy header has no '{}'", key));
  std::size_t begin = at + quoted.size();
  while (begin < header.size() && header[begin] == ' ') ++begin;
  std::size_t end = begin;
  if (end < header.size() && header[end] == '(') {
    end = header.find(')', end);
    if (end == std::string_view::npos) malformed(name, "the .npy header's shape is not closed");
    ++end;
  } else {
    while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  }
  return header.substr(begin, end - begin);
}

std::vector<std::int64_t> parse_shape(std::string_view text, std::string_view name) {
  std::vector<std::int64_t> shape;
  std::size_t i = 1;  // after '('
  while (i < text.size() && text[i] != ')') {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i >= text.size() || text[i] == ')') break;
    std::int64_t extent = 0;
    bool digits = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (extent > (std::numeric_limits<std::int64_t>::max() - 9) / 10) malformed(name, "a .npy dimension overflows");
      extent = extent * 10 + (text[i] - '0');
      ++i;
      digits = true;
    }
    if (!digits) malformed(name, fmt::format("the .npy shape {} is not a tuple of integers", text));
    shape.push_back(extent);
  }
  return shape;
}

}  // namespace

std::string npy_bytes(const float* values, const std::vector<std::int64_t>& shape) {
  std::string dims;
  for (const std::int64_t extent : shape) dims += fmt::format("{}, ", extent);
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", dims);
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
  const std::size_t count = static_cast<std::size_t>(checked_numel(shape, "npy array", sizeof(float)));
  bytes.append(reinterpret_cast<const char*>(values), count * sizeof(float));
  return bytes;
}

NpyArray parse_npy(std::string_view bytes, std::string_view name) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) malformed(name, "not a .npy file (wrong magic bytes)");
  const auto major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length = static_cast<unsigned char>(bytes[8]) | static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) malformed(name, "the .npy header is truncated");
    for (int k = 3; k >= 0; --k) header_length = header_length << 8 | static_cast<unsigned char>(bytes[8 + k]);
    header_start = 12;
  } else {
    malformed(name, fmt::format(".npy format version {} is not supported (1, 2 or 3)", major));
  }
  if (header_length > bytes.size() - header_start) malformed(name, "the .npy header is truncated");
  const std::string_view header = bytes.substr(header_start, header_length);
  const std::string_view descr = header_value(header, "descr", name);
  if (descr != "'<f4'") malformed(name, fmt::format("dtype {} is not float32 ('<f4')", descr));
  if (header_value(header, "fortran_order", name) != "False") malformed(name, "Fortran-ordered arrays are not supported");
  NpyArray array;
  const std::string_view shape_text = header_value(header, "shape", name);
  if (shape_text.empty() || shape_text.front() != '(') malformed(name, fmt::format("shape {} is not a tuple", shape_text));
  array.shape = parse_shape(shape_text, name);
  std::int64_t count = 0;
  try {
    count = checked_numel(array.shape, "the array", sizeof(float));
  } catch (const Error& e) {
    malformed(name, e.what());
  }
  const std::size_t payload = bytes.size() - header_start - header_length;
  if (payload != static_cast<std::size_t>(count) * sizeof(float)) {
    malformed(name, fmt::format("shape {} needs {} bytes of data, the file holds {}", format_shape(array.shape),
                                static_cast<std::size_t>(count) * sizeof(float), payload));
  }
  array.values.resize(static_cast<std::size_t>(count));
  if (count > 0) std::memcpy(array.values.data(), bytes.data() + header_start + header_length, payload);
  return array;
}

}  // namespace embedkit::detail
