#pragma once
/// @file summary.hpp
/// @brief What a table really costs, for a person (to_string) and for code (the fields).

#include <embedkit/dtype.hpp>
#include <embedkit/export.h>
#include <embedkit/placement.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace embedkit {

/// @brief A table's figures, and those of one batch when a batch shape or batch was given.
struct EMBEDKIT_API Summary {
  std::string name;
  std::int64_t rows = 0;        ///< input_dim
  std::int64_t dim = 0;         ///< output_dim
  std::int64_t parameters = 0;  ///< rows × dim
  bool trainable = true;
  bool dense_step = false;       ///< Each train step updates every row (lazy = false): O(rows × dim) work a step.
  DType dtype = DType::float32;  ///< the rows' storage type, which the weights' bytes count
  PlacementDecision placement;   ///< Includes the byte breakdown.
  std::vector<std::int64_t> output_shape;       ///< batch shape + (dim,); empty without a batch.
  std::uint64_t output_bytes = 0;               ///< float32 output of that batch.
  std::optional<std::int64_t> batch_entries;    ///< ids in the batch, when an actual batch was given
  std::optional<std::int64_t> padding_entries;  ///< of those, ids equal to 0 under mask_zero

  /// @brief A printable box like Keras's model.summary(), with exact bytes and human units.
  std::string to_string() const;
};

/// @brief "1.50 GiB (1,610,612,736 bytes)": human units with the exact count beside them.
EMBEDKIT_API std::string format_bytes(std::uint64_t bytes);

}  // namespace embedkit
