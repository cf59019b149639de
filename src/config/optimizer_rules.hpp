#pragma once
// What the rest of the library asks of an optimizer's config, answered per optimizer in
// optimizer_config.cpp beside its Keras keys and validation: with the shared descriptor and update
// (detail/optimizer_math.hpp) and the public enum, the three files a new optimizer touches.

#include <embedkit/config.hpp>
#include <embedkit/detail/row_step.hpp>
#include <embedkit/optimizer.hpp>

#include <cstdint>

namespace embedkit::detail {

/// What step t (1-based) of a table with `config` does to each row it updates: the optimizer's
/// scalars in float as Keras computes float32 variables, the constraint, and whether updates are
/// judged (every non-finite policy but "apply").
StepRule step_rule(const TableConfig& config, std::int64_t t);

/// Whether a step moves every row, touched or not (Adam without lazy: Keras's dense decay).
bool updates_every_row(const OptimizerConfig& optimizer);

/// Whether an accumulator holding 0 divides 0 by 0 on a zero gradient under `optimizer`: Adagrad and
/// row-wise Adagrad at epsilon 0; FTRL with a learning_rate_power != 0 and l2 and beta both 0.
/// The one rule behind OptimizerConfig::validate's check of initial_accumulator_value and the load
/// check of each saved accumulator value.
bool zero_accumulator_divides_zero_by_zero(const OptimizerConfig& optimizer);

/// Whether `value` is 0 as a step sees it: in float32, denormals flushed (flush_denormal).
bool zero_in_step(double value);

}  // namespace embedkit::detail
