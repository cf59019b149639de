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

/// Whether a zero gradient changes a row under `config`: momentum SGD (its velocity decays), Adam
/// (its moments decay), FTRL (a never-touched row is reset to its proximal solution, 0 without
/// shrinkage), weight decay, a regularizer's gradient, a constraint. Plain SGD, Adagrad and row-wise
/// Adagrad leave such a row exactly as it was.
bool zero_gradient_moves_rows(const TableConfig& config);

/// Whether a step updates every row, touched or not: `lazy: false` (Keras's semantics, its dense
/// gradient) where a zero gradient moves a row; O(input_dim · dim) work per step. Elsewhere the
/// dense step equals the sparse one bit for bit, and the sparse one is taken.
bool updates_every_row(const TableConfig& config);

/// Whether an accumulator holding 0 divides 0 by 0 on a zero gradient under `optimizer`: Adagrad and
/// row-wise Adagrad at epsilon 0; FTRL with a learning_rate_power != 0 and l2 and beta both 0.
/// The one rule behind OptimizerConfig::validate's check of initial_accumulator_value and the load
/// check of each saved accumulator value.
bool zero_accumulator_divides_zero_by_zero(const OptimizerConfig& optimizer);

/// Whether `value` is 0 as a step sees it: in float32, denormals flushed (flush_denormal).
bool zero_in_step(double value);

}  // namespace embedkit::detail
