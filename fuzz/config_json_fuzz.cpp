// libFuzzer target: a table config and an optimizer config from arbitrary bytes. Each parses or
// throws embedkit::Error (never Status::internal, never another exception); a parsed config writes
// JSON that parses back to the same config.
#include <embedkit/config.hpp>
#include <embedkit/logging.hpp>
#include <embedkit/optimizer.hpp>

#include "fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<embedkit::TableConfig> config;
  embedkit::fuzz::succeeds([&] { config = embedkit::TableConfig::from_json(text); });
  if (config) {
    const std::string json = config->to_json();
    embedkit::fuzz::require(embedkit::TableConfig::from_json(json).to_json() == json,
                            "a table config does not round-trip through to_json");
  }
  std::optional<embedkit::OptimizerConfig> optimizer;
  embedkit::fuzz::succeeds([&] { optimizer = embedkit::OptimizerConfig::from_json(text); });
  if (optimizer) {
    const std::string json = optimizer->to_json();
    embedkit::fuzz::require(embedkit::OptimizerConfig::from_json(json).to_json() == json,
                            "an optimizer config does not round-trip through to_json");
  }
  return 0;
}
