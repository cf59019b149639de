// libFuzzer target: GloVe / word2vec text and its vocabulary, read through the files the public API
// loads. The first byte picks the vector width (1 to 4) and the reserved leading indices (0 to 2);
// the rest is the vocabulary, then a NUL, then the vectors. A load succeeds with a coverage that
// adds up, or throws Error (io_error or invalid_argument) and leaves every weight as it was.
#include <embedkit/embedkit.hpp>

#include "fuzz/fuzz_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const bool quiet = (embedkit::set_log_level("off"), true);
  (void)quiet;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t split = std::min(rest.find('\0'), rest.size());
  const std::string vocabulary_path = embedkit::fuzz::scratch_directory() + "/vocabulary.txt";
  const std::string vectors_path = embedkit::fuzz::scratch_directory() + "/vectors.txt";
  embedkit::fuzz::write_file(vocabulary_path, std::string(rest.substr(0, split)));
  embedkit::fuzz::write_file(vectors_path, std::string(rest.substr(std::min(split + 1, rest.size()))));

  embedkit::TableConfig config;
  config.input_dim = 16;
  config.output_dim = data[0] % 4 + 1;
  config.seed = 1;
  embedkit::EmbeddingTable table(config);
  const std::int64_t reserved = (data[0] / 4) % 3;
  const auto before = table.get_weights().values;
  embedkit::PretrainedCoverage coverage;
  embedkit::Status status = embedkit::Status::ok;
  if (!embedkit::fuzz::succeeds(
          [&] { coverage = embedkit::load_pretrained_text(table, vectors_path, vocabulary_path, reserved); },
          &status)) {
    embedkit::fuzz::require(status == embedkit::Status::io_error || status == embedkit::Status::invalid_argument,
                            "a bad vectors file is neither io_error nor invalid_argument");
    embedkit::fuzz::require(table.get_weights().values == before, "a failed load changed the table");
    return 0;
  }
  embedkit::fuzz::require(coverage.vocabulary + reserved <= config.input_dim,
                          "a vocabulary larger than the table loaded");
  embedkit::fuzz::require(coverage.found >= 0 && coverage.found <= coverage.vocabulary,
                          "coverage exceeds the vocabulary");
  embedkit::fuzz::require(static_cast<std::int64_t>(coverage.missing_examples.size()) ==
                              std::min<std::int64_t>(10, coverage.vocabulary - coverage.found),
                          "missing examples do not match the coverage");
  const auto after = table.get_weights().values;
  for (std::int64_t row = 0; row < reserved; ++row) {
    embedkit::fuzz::require(std::equal(after.begin() + row * config.output_dim,
                                       after.begin() + (row + 1) * config.output_dim,
                                       before.begin() + row * config.output_dim),
                            "a reserved row changed");
  }
  return 0;
}
