// Pretrained vectors: a .npy matrix, or GloVe / word2vec text with a vocabulary file.
#include <embedkit/pretrained.hpp>
#include <embedkit/status.hpp>

#include "core/expects.hpp"
#include "core/host_memory.hpp"
#include "core/log.hpp"
#include "io/files.hpp"
#include "io/npy.hpp"
#include "table/table_access.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

namespace embedkit {
namespace {

// The lines of a text file, without their line ends.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

std::string file_name(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A text file read whole, refused with its name when host memory cannot take it now: a huge file
// would otherwise fail as an allocation whose error names nothing.
std::string read_text_file(const std::string& path) {
  const detail::InputFile file(path);
  const std::uint64_t available = detail::host_memory_available();
  EMBEDKIT_EXPECTS(file.size() <= available, Status::out_of_memory,
                   "{}: the file holds {} bytes, more than the {} bytes of host memory available to read it", path,
                   file.size(), available);
  return file.read(0, file.size());
}

bool is_integer(std::string_view field) {
  return !field.empty() && field.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

void load_pretrained_npy(EmbeddingTable& table, const std::string& npy_path) {
  const std::string name = file_name(npy_path);
  // The shape set_weights takes is checked on the header, before a matrix of another shape is read.
  const auto fits_table = [&table](const std::vector<std::int64_t>& shape) {
    detail::check_weight_shape(table.config(), shape);
  };
  const detail::NpyArray matrix = detail::parse_npy(detail::read_npy_file(npy_path, name, nullptr, fits_table), name);
  table.set_weights(matrix.values, matrix.shape);
}

PretrainedCoverage load_pretrained_text(EmbeddingTable& table, const std::string& vectors_path,
                                        const std::string& vocabulary_path, std::int64_t reserved) {
  const std::int64_t dim = table.output_dim();
  EMBEDKIT_EXPECTS(reserved >= 0 && reserved < table.input_dim(), Status::invalid_argument,
                   "reserved leading indices must be in [0, {}), got {}", table.input_dim(), reserved);
  const std::string vocabulary_text = read_text_file(vocabulary_path);
  const std::vector<std::string_view> tokens = lines_of(vocabulary_text);
  const auto vocabulary = static_cast<std::int64_t>(tokens.size());
  EMBEDKIT_EXPECTS(vocabulary + reserved <= table.input_dim(), Status::invalid_argument,
                   "{}: {} tokens after {} reserved indices need input_dim {}, but the table has {} ({} too many){}",
                   file_name(vocabulary_path), vocabulary, reserved, vocabulary + reserved, table.input_dim(),
                   vocabulary + reserved - table.input_dim(),
                   table.config().mask_zero && reserved == 0
                       ? "; mask_zero reserves index 0: pass reserved = 1 and input_dim = vocabulary + 1"
                       : "");
  std::unordered_map<std::string_view, std::int64_t> index_of;
  for (std::int64_t k = 0; k < vocabulary; ++k) index_of.emplace(tokens[k], reserved + k);

  // Parse and check every line first: a bad line changes nothing.
  const std::string vectors_text = read_text_file(vectors_path);
  const std::string name = file_name(vectors_path);
  const std::vector<std::string_view> lines = lines_of(vectors_text);
  std::vector<std::pair<std::int64_t, std::vector<float>>> rows;
  std::vector<bool> found(static_cast<std::size_t>(vocabulary), false);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const std::vector<std::string_view> fields = fields_of(lines[n]);
    if (fields.empty()) continue;
    if (n == 0 && fields.size() == 2 && is_integer(fields[0]) && is_integer(fields[1])) {
      EMBEDKIT_EXPECTS(std::strtoll(std::string(fields[1]).c_str(), nullptr, 10) == dim, Status::io_error,
                       "{}:1: the word2vec header says {} values per vector, the table has output_dim {}", name,
                       fields[1], dim);
      continue;
    }
    const auto values = static_cast<std::int64_t>(fields.size()) - 1;
    EMBEDKIT_EXPECTS(values == dim, Status::io_error, "{}:{}: expected {} values, got {}", name, n + 1, dim, values);
    const auto token = index_of.find(fields[0]);
    std::vector<float> row(static_cast<std::size_t>(dim));
    for (std::int64_t c = 0; c < dim; ++c) {
      const std::string field(fields[c + 1]);
      char* end = nullptr;
      errno = 0;
      const float value = std::strtof(field.c_str(), &end);
      const bool whole = !field.empty() && end == field.c_str() + field.size();
      // strtof reports underflow with ERANGE too; a value that rounds to 0 or a subnormal is kept.
      if (whole && errno == ERANGE && !std::isfinite(value)) {
        throw Error(Status::io_error, fmt::format("{}:{}: '{}' is outside the range of float32", name, n + 1, field));
      }
      if (!whole || !std::isfinite(value)) {
        throw Error(Status::io_error, fmt::format("{}:{}: '{}' is not a finite number", name, n + 1, field));
      }
      row[c] = value;
    }
    if (token == index_of.end()) continue;
    found[token->second - reserved] = true;
    rows.emplace_back(token->second, std::move(row));
  }
  for (const auto& [index, row] : rows) table.set_row(index, row);
  PretrainedCoverage coverage;
  coverage.vocabulary = vocabulary;
  for (std::int64_t k = 0; k < vocabulary; ++k) {
    if (found[k]) {
      ++coverage.found;
    } else if (coverage.missing_examples.size() < 10) {
      coverage.missing_examples.emplace_back(tokens[k]);
    }
  }
  detail::logger().info(
      "table '{}': pretrained vectors for {} of {} tokens ({:.1f}%) from {}{}{}", table.config().name, coverage.found,
      vocabulary,
      vocabulary > 0 ? 100.0 * static_cast<double>(coverage.found) / static_cast<double>(vocabulary) : 100.0, name,
      coverage.missing_examples.empty() ? "" : "; missing, e.g.: ", fmt::join(coverage.missing_examples, ", "));
  return coverage;
}

}  // namespace embedkit
