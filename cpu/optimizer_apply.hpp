#pragma once
// The optimizer step on the CPU: for each touched row, the regularizer's gradient, weight decay,
// the optimizer's update (include/embedkit/detail/optimizer_math.hpp) and the constraint.

#include <embedkit/config.hpp>
#include <embedkit/detail/optimizer_math.hpp>
#include <embedkit/detail/padding.hpp>
#include <embedkit/detail/row_step.hpp>
#include <embedkit/optimizer.hpp>

#include <cstdint>

namespace embedkit::cpu {

/// Where one step writes and what it does there (detail/row_step.hpp, shared with the kernels).
using detail::RowStep;

/// Updates row `id` from its folded gradient `grad` (NULL: a zero gradient). Returns false when
/// update.rule.judge_results rejected the result: the row and its state are then as before.
bool update_row(const RowStep& update, std::int64_t id, const float* grad);

/// Whether update_row would reject row `id`'s update (detail::keeps_update), computed on a copy:
/// the table is not written. For the error policy, which must fail a step before it changes anything.
bool rejects_update(const RowStep& update, std::int64_t id, const float* grad);

/// Asks the caches for row `id`'s weights and optimizer state, which an update will soon read. The
/// touched rows are sorted but sparse over the table, so each is a miss the hardware prefetchers
/// cannot foresee.
void prefetch_update_state(const RowStep& update, std::int64_t id);

/// Updates rows ids[i] from grads[i·dim ..] in parallel, leaving rows with skip[i] != 0 alone.
/// Returns how many updates update_row rejected.
std::int64_t update_rows(const RowStep& update, const std::int64_t* ids, const float* grads, const std::uint8_t* skip,
                         std::int64_t count);

/// Updates every row of [row_begin, row_end) except `padding`: the touched ones (sorted `ids`) from
/// their gradients, the others (and skipped ones) from a zero gradient: Keras's dense semantics.
/// Returns how many updates update_row rejected.
std::int64_t update_every_row(const RowStep& update, std::int64_t row_begin, std::int64_t row_end,
                              const std::int64_t* ids, const float* grads, const std::uint8_t* skip, std::int64_t count,
                              detail::Padding padding);

/// The smallest id whose update update_rows (dense: update_every_row) would reject, or -1; nothing
/// is written.
std::int64_t first_rejected_update(const RowStep& update, bool dense, std::int64_t row_begin, std::int64_t row_end,
                                   const std::int64_t* ids, const float* grads, const std::uint8_t* skip,
                                   std::int64_t count, detail::Padding padding);

/// Applies `constraint` to one row of `dim` weights.
void constrain_row(float* row, std::int64_t dim, const Constraint& constraint);
/// The same with the constraint as a step carries it (max_value in float).
void constrain_row(float* row, std::int64_t dim, ConstraintKind constraint, float max_value);

}  // namespace embedkit::cpu
