#pragma once
// The library's own ways into EmbeddingTable that its public API does not offer: a table that is a
// slice of rows of a larger matrix (a shard), and a table rebuilt from host arrays (a re-sharded
// checkpoint). Internal: only the sharded tables use it.

#include <embedkit/config.hpp>
#include <embedkit/context.hpp>
#include <embedkit/table.hpp>

#include "core/memory_overlap.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace embedkit::detail {

/// A whole-matrix shape must be (input_dim, output_dim): Error(shape_mismatch) with Keras's message
/// otherwise. set_weights's rule, also for a caller that checks before it reads the matrix.
void check_weight_shape(const TableConfig& config, std::span<const std::int64_t> shape);

/// Rows first, first + stride, first + 2·stride, ... of a matrix of `matrix_rows` rows.
struct RowSlice {
  std::int64_t matrix_rows = 0;
  std::int64_t first = 0;
  std::int64_t stride = 1;
};

struct TableAccess {
  /// A table of config.input_dim rows holding `rows` of the matrix its initializer draws for a
  /// table of rows.matrix_rows rows (the same values, bit for bit), placed as any table.
  static EmbeddingTable make_slice(TableConfig config, Context& context, const RowSlice& rows);

  /// A table holding `weights` (input_dim × output_dim, rounded to nearest into config.dtype), one
  /// array per optimizer state slot (in optimizer_state_names() order, each input_dim × its width)
  /// and `step`, placed as any table; `rows` of a larger matrix, which keys its stochastic rounding.
  /// @throws Error(invalid_argument) when an array has the wrong size.
  static EmbeddingTable restore(TableConfig config, Context& context, std::span<const float> weights,
                                const std::vector<std::vector<float>>& slots, std::int64_t step, const RowSlice& rows);

  /// Where `table`'s memory is now (weights, then each optimizer slot), for the C ABI's overlap
  /// check of tensors in device memory (memory_overlap.hpp).
  static std::vector<NamedBytes> memory(const EmbeddingTable& table);

  /// The table's state, for the table layer's many-table calls (a collection's), which take the
  /// table's lock themselves.
  static EmbeddingTable::Impl& impl(EmbeddingTable& table) { return *table.impl_; }
  static const EmbeddingTable::Impl& impl(const EmbeddingTable& table) { return *table.impl_; }
};

}  // namespace embedkit::detail
