#pragma once
// The optimizer's per-row state ("slots", named as Keras names its variables) and its bytes.

#include <embedkit/optimizer.hpp>

#include "host_memory.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace embedkit::detail {

/// One state array of input_dim rows of `width` floats.
struct OptimizerSlot {
  std::string name;
  std::int64_t width = 0;
  HostFloats values;
};

/// Names, widths and initial values of the slots `optimizer` keeps for rows of `dim` floats.
struct SlotSpec {
  std::string name;
  std::int64_t width;
  float initial;
};
std::vector<SlotSpec> slot_specs(const OptimizerConfig& optimizer, std::int64_t dim);

/// Bytes of every slot for `input_dim` rows; throws out_of_memory if that overflows.
std::uint64_t optimizer_state_bytes(const OptimizerConfig& optimizer, std::int64_t input_dim, std::int64_t dim);

/// Allocates and initialises the slots (checked against host memory as `what`).
std::vector<OptimizerSlot> allocate_slots(const OptimizerConfig& optimizer, std::int64_t input_dim, std::int64_t dim,
                                          const std::string& what);

}  // namespace embedkit::detail
