#include "optimizer_apply.hpp"

#include "parallel.hpp"
#include "prefetch.hpp"

#include <algorithm>
#include <cmath>

namespace embedkit::cpu {
namespace {

float row_norm(const float* row, std::int64_t dim) {
  float squares = 0.0f;
  for (std::int64_t c = 0; c < dim; ++c) squares += row[c] * row[c];
  return std::sqrt(squares);
}

}  // namespace

void constrain_row(float* row, std::int64_t dim, const Constraint& constraint) {
  switch (constraint.kind) {
    case ConstraintKind::none: return;
    case ConstraintKind::non_neg:
      for (std::int64_t c = 0; c < dim; ++c) row[c] = detail::non_neg(row[c]);
      return;
    case ConstraintKind::max_norm: {
      const float scale = detail::max_norm_scale(row_norm(row, dim), static_cast<float>(constraint.max_value));
      for (std::int64_t c = 0; c < dim; ++c) row[c] *= scale;
      return;
    }
    case ConstraintKind::unit_norm: {
      const float divisor = detail::unit_norm_divisor(row_norm(row, dim));
      for (std::int64_t c = 0; c < dim; ++c) row[c] /= divisor;
      return;
    }
  }
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
void update_columns(const RowUpdate& update, std::int64_t id, const float* grad) {
  const std::int64_t dim = update.dim;
  // A copy the loops can treat as invariant: the compiler hoists the row constants out of them.
  const detail::StepScalars s = update.scalars;
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
  float* __restrict slot0 =
      update.slot0 != nullptr && update.kind != OptimizerKind::rowwise_adagrad ? update.slot0 + at : nullptr;
  float* __restrict slot1 = update.slot1 != nullptr ? update.slot1 + at : nullptr;
  // Every column: its gradient from w before the step, w decayed, then the optimizer's `step`.
  const auto each_column = [&](const auto& step) {
    for (std::int64_t c = 0; c < dim; ++c) {
      const float g = gradient(c);
      w[c] = decayed(w[c]);
      step(c, g);
    }
  };
  switch (update.kind) {
    case OptimizerKind::rowwise_adagrad: {
      float& accumulator = update.slot0[id];
      accumulator += gradient_squares(dim, gradient) / static_cast<float>(dim);
      const float row_accumulator = accumulator;  // a value, not a reference the stores to w might change
      return each_column([&](std::int64_t c, float g) { detail::rowwise_adagrad_update(w[c], row_accumulator, g, s); });
    }
    case OptimizerKind::sgd:
      return each_column([&](std::int64_t c, float g) {
        float velocity = slot0 != nullptr ? slot0[c] : 0.0f;
        detail::sgd_update(w[c], velocity, g, s);
        if (slot0 != nullptr) slot0[c] = velocity;
      });
    case OptimizerKind::adagrad:
      return each_column([&](std::int64_t c, float g) { detail::adagrad_update(w[c], slot0[c], g, s); });
    case OptimizerKind::adam:
      return each_column([&](std::int64_t c, float g) { detail::adam_update(w[c], slot0[c], slot1[c], g, s); });
    case OptimizerKind::ftrl:
      return each_column([&](std::int64_t c, float g) { detail::ftrl_update(w[c], slot0[c], slot1[c], g, s); });
    case OptimizerKind::custom: return;  // applied by the table on the calling thread
  }
}

}  // namespace

void update_row(const RowUpdate& update, std::int64_t id, const float* grad) {
  const detail::StepScalars& s = update.scalars;
  const bool plain =
      grad != nullptr && s.regularizer_l1 == 0.0f && s.regularizer_l2 == 0.0f && s.weight_decay == 0.0f;
  if (plain) {
    update_columns<true>(update, id, grad);
  } else {
    update_columns<false>(update, id, grad);
  }
  constrain_row(update.weights + id * update.dim, update.dim, update.constraint);
}

void prefetch_update_state(const RowUpdate& update, std::int64_t id) {
  const std::size_t row_bytes = static_cast<std::size_t>(update.dim) * sizeof(float);
  prefetch_row(update.weights + id * update.dim, row_bytes);
  if (update.slot0 != nullptr) {
    if (update.kind == OptimizerKind::rowwise_adagrad) {
      prefetch_row(update.slot0 + id, sizeof(float));
    } else {
      prefetch_row(update.slot0 + id * update.dim, row_bytes);
    }
  }
  if (update.slot1 != nullptr) prefetch_row(update.slot1 + id * update.dim, row_bytes);
}

void update_rows(const RowUpdate& update, const std::int64_t* ids, const float* grads, const std::uint8_t* skip,
                 std::int64_t count) {
#pragma omp parallel for schedule(static) if (count * update.dim >= kParallelMinFloats)
  for (std::int64_t i = 0; i < count; ++i) {
    if (i + kPrefetchDistance < count) prefetch_update_state(update, ids[i + kPrefetchDistance]);
    if (skip[i] == 0) update_row(update, ids[i], grads + i * update.dim);
  }
}

void update_every_row(const RowUpdate& update, std::int64_t row_begin, std::int64_t row_end, const std::int64_t* ids,
                      const float* grads, const std::uint8_t* skip, std::int64_t count, std::int64_t excluded) {
#pragma omp parallel for schedule(static) if ((row_end - row_begin) * update.dim >= kParallelMinFloats)
  for (std::int64_t id = row_begin; id < row_end; ++id) {
    if (id == excluded) continue;
    const std::int64_t* found = std::lower_bound(ids, ids + count, id);
    const std::int64_t i = found - ids;
    const bool touched = i < count && *found == id && skip[i] == 0;
    update_row(update, id, touched ? grads + i * update.dim : nullptr);
  }
}

}  // namespace embedkit::cpu
