#include "optimizer_apply.hpp"

#include <embedkit/detail/square_sum.hpp>

#include "parallel.hpp"
#include "prefetch.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace embedkit::cpu {
namespace {

// √Σw² in column order; finite for rows whose Σw² overflows float32 (detail::SquareSum).
float row_norm(const float* row, std::int64_t dim) {
  detail::SquareSum squares;
  for (std::int64_t c = 0; c < dim; ++c) squares.add(row[c]);
  return squares.root();
}

}  // namespace

void constrain_row(float* row, std::int64_t dim, ConstraintKind constraint, float max_value) {
  if (constraint == ConstraintKind::none) return;
  const float norm = detail::needs_row_norm(constraint) ? row_norm(row, dim) : 0.0f;
  const float factor = detail::constraint_factor(constraint, norm, max_value);
  detail::with_constraint(constraint, [&](auto kind) {
    for (std::int64_t c = 0; c < dim; ++c) row[c] = detail::constrained<decltype(kind)::value>(row[c], factor);
  });
}

void constrain_row(float* row, std::int64_t dim, const Constraint& constraint) {
  constrain_row(row, dim, constraint.kind, static_cast<float>(constraint.max_value));
}

namespace {

// Σ g² of a row, with g the regularized gradient of column c: eight running sums over the columns
// c ≡ j (mod 8), each in column order, then added pairwise. A fixed order, so the result does not
// depend on the thread count; unlike one running sum it is not a chain of `dim` dependent adds,
// and the compiler keeps the eight sums in vector registers.
template <class Gradient>
float gradient_squares(std::int64_t dim, const Gradient& gradient) {
  constexpr std::int64_t kLanes = 8;
  float lanes[kLanes] = {};
  std::int64_t c = 0;
  for (; c + kLanes <= dim; c += kLanes) {
    for (std::int64_t j = 0; j < kLanes; ++j) lanes[j] += gradient(c + j) * gradient(c + j);
  }
  for (std::int64_t j = 0; c + j < dim; ++j) lanes[j] += gradient(c + j) * gradient(c + j);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// The optimizer's update of one row's columns. kPlain: a gradient row is given and there is no
// penalty and no weight decay, so the regularized gradient is the gradient and the decayed weight
// the weight (the shared functions return exactly those then): loops without the tests, which the
// compiler vectorises.
template <bool kPlain>
void update_columns(const RowStep& update, std::int64_t id, const float* grad) {
  const std::int64_t dim = update.dim;
  // A copy the loops can treat as invariant: the compiler hoists the row constants out of them.
  const detail::StepScalars s = update.rule.scalars;
  float* __restrict w = update.weights + id * dim;
  const float* __restrict g_row = grad;
  const std::int64_t at = id * dim;
  const auto gradient = [&](std::int64_t c) {  // the regularized gradient, from w before decay
    if constexpr (kPlain) return g_row[c];
    return detail::regularized_gradient(g_row != nullptr ? g_row[c] : 0.0f, w[c], s);
  };
  const auto decayed = [&](float weight) {
    if constexpr (kPlain) return weight;
    return detail::decayed_weight(weight, s);
  };
  const bool per_row_slot = detail::has_row_statistic(update.rule.kind);
  float* __restrict slot0 = update.slot0 != nullptr && !per_row_slot ? update.slot0 + at : nullptr;
  float* __restrict slot1 = update.slot1 != nullptr ? update.slot1 + at : nullptr;
  // Every column: its gradient from w before the step, w decayed, then the optimizer's `step`.
  const auto each_column = [&](const auto& step) {
    for (std::int64_t c = 0; c < dim; ++c) {
      const float g = gradient(c);
      w[c] = decayed(w[c]);
      step(c, g);
    }
  };
  // One loop per optimizer (detail::with_optimizer), its state read and written as its descriptor
  // lays it out: a slot it always keeps by reference, an optional one (SGD's momentum) through a
  // copy, none not at all.
  detail::with_optimizer(update.rule.kind, [&](auto kind) {
    constexpr OptimizerKind K = decltype(kind)::value;
    constexpr detail::OptimizerDescriptor descriptor = detail::describe(K);
    if constexpr (K == OptimizerKind::custom) {
      return;  // applied by the table on the calling thread
    } else if constexpr (descriptor.row_statistic) {
      float& accumulator = update.slot0[id];
      accumulator += gradient_squares(dim, gradient) / static_cast<float>(dim);
      const float row_accumulator = accumulator;  // a value, not a reference the stores to w might change
      float unused = 0.0f;
      each_column(
          [&](std::int64_t c, float g) { detail::update_element<K>(w[c], unused, unused, g, row_accumulator, s); });
    } else if constexpr (descriptor.slots[0].only_with_momentum) {
      each_column([&](std::int64_t c, float g) {
        float velocity = slot0 != nullptr ? slot0[c] : 0.0f;
        detail::update_element<K>(w[c], velocity, velocity, g, 0.0f, s);
        if (slot0 != nullptr) slot0[c] = velocity;
      });
    } else if constexpr (descriptor.slot_count == 1) {
      each_column([&](std::int64_t c, float g) { detail::update_element<K>(w[c], slot0[c], slot0[c], g, 0.0f, s); });
    } else {
      each_column([&](std::int64_t c, float g) { detail::update_element<K>(w[c], slot0[c], slot1[c], g, 0.0f, s); });
    }
  });
}

}  // namespace

namespace {

// The optimizer's update of row `id`, before the constraint.
void update_state(const RowStep& update, std::int64_t id, const float* grad) {
  const detail::StepScalars& s = update.rule.scalars;
  const bool plain = grad != nullptr && s.regularizer_l1 == 0.0f && s.regularizer_l2 == 0.0f && s.weight_decay == 0.0f;
  if (plain) {
    update_columns<true>(update, id, grad);
  } else {
    update_columns<false>(update, id, grad);
  }
}

// Row `id`'s weights and state as (start, length) pieces: what an update writes.
struct RowPieces {
  float* start[3] = {};
  std::int64_t length[3] = {};
  int count = 0;
  std::int64_t floats = 0;
};

RowPieces row_pieces(const RowStep& update, std::int64_t id) {
  RowPieces pieces;
  const auto add = [&pieces](float* start, std::int64_t length) {
    pieces.start[pieces.count] = start;
    pieces.length[pieces.count++] = length;
    pieces.floats += length;
  };
  const std::int64_t dim = update.dim;
  add(update.weights + id * dim, dim);
  if (update.slot0 != nullptr) {
    if (detail::has_row_statistic(update.rule.kind)) {
      add(update.slot0 + id, 1);
    } else {
      add(update.slot0 + id * dim, dim);
    }
  }
  if (update.slot1 != nullptr) add(update.slot1 + id * dim, dim);
  return pieces;
}

void copy_out(const RowPieces& pieces, float* to) {
  for (int k = 0; k < pieces.count; ++k) to = std::copy_n(pieces.start[k], pieces.length[k], to);
}

void copy_in(const RowPieces& pieces, const float* from) {
  for (int k = 0; k < pieces.count; ++k) {
    std::copy_n(from, pieces.length[k], pieces.start[k]);
    from += pieces.length[k];
  }
}

// Whether none of `count` values is NaN or infinite (detail::finite_value). No early exit and no
// branch in the loop, so it vectorises: it runs on every row a judged step updates.
bool all_finite(const float* values, std::int64_t count) {
  int finite = 1;
  for (std::int64_t c = 0; c < count; ++c) finite &= static_cast<int>(detail::finite_value(values[c]));
  return finite != 0;
}

// Whether every element of row `id` after its update passes detail::keeps_update, i.e. its weights
// and each state slot are all finite (checked array by array, the same verdict).
bool keeps_row(const RowStep& update, std::int64_t id) {
  const std::int64_t dim = update.dim;
  bool keeps = all_finite(update.weights + id * dim, dim);
  if (update.slot0 != nullptr) {
    keeps = keeps && (detail::has_row_statistic(update.rule.kind) ? detail::finite_value(update.slot0[id])
                                                                  : all_finite(update.slot0 + id * dim, dim));
  }
  if (update.slot1 != nullptr) keeps = keeps && all_finite(update.slot1 + id * dim, dim);
  return keeps;
}

// A thread's copy of one row and its state: the row before a judged update, or a probe's scratch.
std::vector<float>& row_scratch(std::int64_t floats) {
  thread_local std::vector<float> scratch;
  if (static_cast<std::int64_t>(scratch.size()) < floats) scratch.resize(static_cast<std::size_t>(floats));
  return scratch;
}

// A thread's float32 copy of a row stored narrower: apart from row_scratch, which the update of
// that copy uses in turn.
float* wide_scratch(std::int64_t floats) {
  thread_local std::vector<float> scratch;
  if (static_cast<std::int64_t>(scratch.size()) < floats) scratch.resize(static_cast<std::size_t>(floats));
  return scratch.data();
}

// Row `id` of a step on rows stored as float16 or bfloat16, widened into `wide`, as a step on a
// one-row float32 table: the same optimizer math on the same state (the table's, offset to the row).
RowStep widened(const RowStep& update, std::int64_t id, float* wide) {
  const std::int64_t dim = update.dim;
  RowStep one = update;
  one.weights = wide;
  one.narrow_rows = nullptr;
  one.narrow_type = DType::float32;
  if (one.slot0 != nullptr) one.slot0 += detail::has_row_statistic(update.rule.kind) ? id : id * dim;
  if (one.slot1 != nullptr) one.slot1 += id * dim;
  detail::with_dtype(update.narrow_type, [&](auto tag) {
    using T = decltype(tag);
    const T* row = static_cast<const T*>(update.narrow_rows) + id * dim;
    for (std::int64_t c = 0; c < dim; ++c) wide[c] = detail::widen(row[c]);
  });
  return one;
}

// The updated float32 row `wide` rounded into row `id` of the narrow rows (the write-back).
void write_back(const RowStep& update, std::int64_t id, const float* wide) {
  detail::with_dtype(update.narrow_type, [&](auto tag) {
    using T = decltype(tag);
    detail::narrow_updated_row(wide, update.dim, update.rule.rounding, static_cast<std::uint64_t>(id),
                               static_cast<T*>(update.narrow_rows) + id * update.dim);
  });
}

}  // namespace

bool update_row(const RowStep& update, std::int64_t id, const float* grad) {
  if (update.narrow_rows != nullptr) {
    float* wide = wide_scratch(update.dim);
    if (!update_row(widened(update, id, wide), 0, grad)) return false;
    write_back(update, id, wide);
    return true;
  }
  if (update.rule.judge_results) {
    const RowPieces pieces = row_pieces(update, id);
    std::vector<float>& saved = row_scratch(pieces.floats);
    copy_out(pieces, saved.data());
    update_state(update, id, grad);
    if (!keeps_row(update, id)) {
      copy_in(pieces, saved.data());
      return false;
    }
  } else {
    update_state(update, id, grad);
  }
  constrain_row(update.weights + id * update.dim, update.dim, update.rule.constraint, update.rule.max_value);
  return true;
}

bool rejects_update(const RowStep& update, std::int64_t id, const float* grad) {
  if (update.narrow_rows != nullptr) return rejects_update(widened(update, id, wide_scratch(update.dim)), 0, grad);
  // The same update on a copy of the row, as row 0 of a one-row table: the same bits, no writes.
  const RowPieces pieces = row_pieces(update, id);
  std::vector<float>& copy = row_scratch(pieces.floats);
  copy_out(pieces, copy.data());
  RowStep probe = update;
  float* next = copy.data();
  probe.weights = next;
  next += update.dim;
  if (update.slot0 != nullptr) {
    probe.slot0 = next;
    next += detail::has_row_statistic(update.rule.kind) ? 1 : update.dim;
  }
  if (update.slot1 != nullptr) probe.slot1 = next;
  update_state(probe, 0, grad);
  return !keeps_row(probe, 0);
}

void prefetch_update_state(const RowStep& update, std::int64_t id) {
  const std::size_t row_bytes = static_cast<std::size_t>(update.dim) * sizeof(float);
  if (update.narrow_rows != nullptr) {
    const std::size_t narrow_bytes = static_cast<std::size_t>(update.dim) * dtype_bytes(update.narrow_type);
    prefetch_row(static_cast<const char*>(update.narrow_rows) + id * narrow_bytes, narrow_bytes);
  } else {
    prefetch_row(update.weights + id * update.dim, row_bytes);
  }
  if (update.slot0 != nullptr) {
    if (detail::has_row_statistic(update.rule.kind)) {
      prefetch_row(update.slot0 + id, sizeof(float));
    } else {
      prefetch_row(update.slot0 + id * update.dim, row_bytes);
    }
  }
  if (update.slot1 != nullptr) prefetch_row(update.slot1 + id * update.dim, row_bytes);
}

std::int64_t update_rows(const RowStep& update, const std::int64_t* ids, const float* grads, const std::uint8_t* skip,
                         std::int64_t count) {
  std::int64_t rejected = 0;
#pragma omp parallel for schedule(static) reduction(+ : rejected) if (count * update.dim >= kParallelMinFloats)
  for (std::int64_t i = 0; i < count; ++i) {
    if (i + kPrefetchDistance < count) prefetch_update_state(update, ids[i + kPrefetchDistance]);
    if (skip[i] == 0 && !update_row(update, ids[i], grads + i * update.dim)) ++rejected;
  }
  return rejected;
}

namespace {

// Row `id`'s gradient in a dense step: its folded row when touched and not skipped, else NULL (zero).
const float* dense_gradient(const RowStep& update, std::int64_t id, const std::int64_t* ids, const float* grads,
                            const std::uint8_t* skip, std::int64_t count) {
  const std::int64_t* found = std::lower_bound(ids, ids + count, id);
  const std::int64_t i = found - ids;
  return i < count && *found == id && skip[i] == 0 ? grads + i * update.dim : nullptr;
}

}  // namespace

std::int64_t update_every_row(const RowStep& update, std::int64_t row_begin, std::int64_t row_end,
                              const std::int64_t* ids, const float* grads, const std::uint8_t* skip, std::int64_t count,
                              detail::Padding padding) {
  std::int64_t rejected = 0;
#pragma omp parallel for schedule(static) reduction(+ : rejected) \
    if ((row_end - row_begin) * update.dim >= kParallelMinFloats)
  for (std::int64_t id = row_begin; id < row_end; ++id) {
    if (padding.is(id)) continue;
    if (!update_row(update, id, dense_gradient(update, id, ids, grads, skip, count))) ++rejected;
  }
  return rejected;
}

std::int64_t first_rejected_update(const RowStep& update, bool dense, std::int64_t row_begin, std::int64_t row_end,
                                   const std::int64_t* ids, const float* grads, const std::uint8_t* skip,
                                   std::int64_t count, detail::Padding padding) {
  const std::int64_t first = dense ? row_begin : 0, end = dense ? row_end : count;
  std::int64_t found = end;  // the smallest position rejected
#pragma omp parallel for schedule(static) reduction(min : found) if ((end - first) * update.dim >= kParallelMinFloats)
  for (std::int64_t k = first; k < end; ++k) {
    const bool rejected =
        dense ? !padding.is(k) && rejects_update(update, k, dense_gradient(update, k, ids, grads, skip, count))
              : skip[k] == 0 && rejects_update(update, ids[k], grads + k * update.dim);
    if (rejected && k < found) found = k;
  }
  if (found == end) return -1;
  return dense ? found : ids[found];
}

}  // namespace embedkit::cpu
