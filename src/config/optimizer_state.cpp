#include "config/optimizer_state.hpp"

#include <embedkit/detail/optimizer_math.hpp>

#include <embedkit/status.hpp>

#include <fmt/format.h>


namespace embedkit::detail {

bool zero_in_step(double value) { return flush_denormal(static_cast<float>(value)) == 0.0f; }

bool zero_accumulator_divides_zero_by_zero(const OptimizerConfig& optimizer) {
  switch (optimizer.kind) {
    case OptimizerKind::adagrad:
    case OptimizerKind::rowwise_adagrad:
      // g / (sqrt(accumulator) + epsilon) with g, the accumulator and epsilon 0.
      return zero_in_step(optimizer.epsilon);
    case OptimizerKind::ftrl:
      // At accumulator 0, accumulator^(-learning_rate_power) is 0 too, and so is the divisor
      // accumulator^p / lr + 2·(l2 + beta / (2·lr)) unless l2 or beta is > 0.
      return optimizer.learning_rate_power != 0 && zero_in_step(optimizer.l2_regularization_strength) &&
             zero_in_step(optimizer.beta);
    default: return false;
  }
}

std::vector<SlotSpec> slot_specs(const OptimizerConfig& optimizer, std::int64_t dim) {
  const auto initial_accumulator = static_cast<float>(optimizer.initial_accumulator_value);
  const bool zero_divides = zero_accumulator_divides_zero_by_zero(optimizer);
  switch (optimizer.kind) {
    case OptimizerKind::sgd:
      if (optimizer.momentum == 0.0) return {};
      return {{"momentum", dim, 0.0f}};
    case OptimizerKind::adagrad: return {{"accumulator", dim, initial_accumulator, true, zero_divides}};
    case OptimizerKind::rowwise_adagrad: return {{"row_accumulator", 1, initial_accumulator, true, zero_divides}};
    case OptimizerKind::adam: return {{"momentum", dim, 0.0f}, {"velocity", dim, 0.0f, true}};
    case OptimizerKind::ftrl:
      return {{"accumulator", dim, initial_accumulator, true, zero_divides}, {"linear", dim, 0.0f}};
    case OptimizerKind::custom:
      if (optimizer.custom_state_width == 0) return {};
      return {{"state", optimizer.custom_state_width, 0.0f}};
  }
  return {};
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
