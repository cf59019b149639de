#pragma once
// The one way tests make a table from its shape, seed, padding row and bounds check; the rest of
// TableConfig keeps its defaults (table_config, for a test that sets more fields before creating).

#include <embedkit/embedkit.hpp>

#include <cstdint>
#include <optional>

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

}  // namespace embedkit::testing
