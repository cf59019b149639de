#pragma once
// The optimizer's per-row state ("slots", named as Keras names its variables) and its bytes.

#include <embedkit/optimizer.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace embedkit::detail {

/// Names, widths and initial values of the slots `optimizer` keeps for rows of `dim` floats, and
/// whether the update needs the values >= 0 (accumulators and second moments, whose square roots
/// it takes). Every slot value must be finite; a checkpoint's are checked against both at load.
struct SlotSpec {
  std::string name;
  std::int64_t width;
  float initial;
  bool non_negative = false;
  /// The slot is an accumulator that a 0 in it (denormals count: steps flush them) makes the step
  /// divide 0 by 0 on a zero gradient, under this config (zero_accumulator_divides_zero_by_zero).
  bool zero_divides = false;
  /// One value per row, shaped (input_dim,); otherwise (input_dim, width).
  bool per_row = false;
};

std::vector<SlotSpec> slot_specs(const OptimizerConfig& optimizer, std::int64_t dim);

/// Bytes of every slot for `input_dim` rows; throws out_of_memory if that overflows.
std::uint64_t optimizer_state_bytes(const OptimizerConfig& optimizer, std::int64_t input_dim, std::int64_t dim);

}  // namespace embedkit::detail
