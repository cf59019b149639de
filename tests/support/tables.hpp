#pragma once
// The one way tests make a table from its shape, seed, padding row and bounds check; the rest of
// TableConfig keeps its defaults (table_config, for a test that sets more fields before creating);
// and the one way they draw a gradient or values uniform in [-1, 1) from a seed.

#include <embedkit/embedkit.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace embedkit::testing {

/// A config of `rows` x `dim` with a fixed seed, so every run draws the same weights.
inline TableConfig table_config(std::int64_t rows, std::int64_t dim, std::uint64_t seed,
                                std::optional<std::int64_t> padding_idx = std::nullopt,
                                BoundsCheck bounds_check = BoundsCheck::error) {
  TableConfig config;
  config.input_dim = rows;
  config.output_dim = dim;
  config.seed = seed;
  config.padding_idx = padding_idx;
  config.bounds_check = bounds_check;
  return config;
}

/// A table of that config in the default context, placed as the defaults place it.
inline EmbeddingTable make_table(std::int64_t rows, std::int64_t dim, std::uint64_t seed,
                                 std::optional<std::int64_t> padding_idx = std::nullopt,
                                 BoundsCheck bounds_check = BoundsCheck::error) {
  return EmbeddingTable(table_config(rows, dim, seed, padding_idx, bounds_check));
}

/// `count` floats uniform in [-1, 1), the same for a seed on every run.
inline std::vector<float> uniform_floats(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (auto& v : values) v = value(rng);
  return values;
}

}  // namespace embedkit::testing
