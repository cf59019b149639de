#include "config/optimizer_state.hpp"

#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/status.hpp>

#include "config/optimizer_rules.hpp"

#include <fmt/format.h>

namespace embedkit::detail {

std::vector<SlotSpec> slot_specs(const OptimizerConfig& optimizer, std::int64_t dim) {
  const OptimizerDescriptor descriptor = describe(optimizer.kind);
  const bool zero_divides = zero_accumulator_divides_zero_by_zero(optimizer);
  std::vector<SlotSpec> specs;
  for (int k = 0; k < descriptor.slot_count; ++k) {
    const SlotDescriptor& slot = descriptor.slots[k];
    if (slot.only_with_momentum && optimizer.momentum == 0.0) continue;
    const std::int64_t width = slot.width == SlotWidth::row_width ? dim
                               : slot.width == SlotWidth::one     ? 1
                                                                  : optimizer.custom_state_width;
    if (width == 0) continue;
    const bool accumulator = slot.starts_at_initial_accumulator;
    specs.push_back({slot.name, width, accumulator ? static_cast<float>(optimizer.initial_accumulator_value) : 0.0f,
                     slot.non_negative, accumulator && zero_divides, slot.width == SlotWidth::one});
  }
  return specs;
}

std::uint64_t optimizer_state_bytes(const OptimizerConfig& optimizer, std::int64_t input_dim, std::int64_t dim) {
  std::uint64_t total = 0;
  for (const SlotSpec& slot : slot_specs(optimizer, dim)) {
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(input_dim), static_cast<std::uint64_t>(slot.width) * 4,
                               &bytes) ||
        __builtin_add_overflow(total, bytes, &total)) {
      throw Error(Status::out_of_memory, "optimizer state needs more bytes than memory can address");
    }
  }
  return total;
}

}  // namespace embedkit::detail
