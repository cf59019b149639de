#pragma once
// Plain reference implementations of a table's operations, written from their documented meaning
// and nothing of the library's: a lookup, a pooled lookup (sum, mean, sqrtn, max; per-sample weights;
// padding), the sparse gradient folded in the canonical order, the pooled gradient, and one optimizer
// step. The lookup and the fold are exact (their order is part of the contract), so they are compared
// bit for bit; the pooled results and optimizer steps come with a tolerance.

#include <embedkit/embedkit.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace embedkit::testing::reference {

/// What a table is: its matrix and the ids that read as zeros.
struct Matrix {
  std::vector<float> weights;  // rows × dim
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  std::optional<std::int64_t> padding_idx;

  bool padding(std::int64_t id) const { return padding_idx && id == *padding_idx; }
  bool in_range(std::int64_t id) const { return id >= 0 && id < rows; }
  /// Element c of id's row as a lookup reads it: zeros for padding and ids outside the table.
  float at(std::int64_t id, std::int64_t c) const {
    return padding(id) || !in_range(id) ? 0.0f : weights[static_cast<std::size_t>(id * dim + c)];
  }
};

/// The rows of `ids`, zeros for padding and out-of-range ids (bounds_check zero_fill).
template <class Index>
std::vector<float> lookup(const Matrix& m, const std::vector<Index>& ids) {
  std::vector<float> out;
  for (const Index id : ids) {
    for (std::int64_t c = 0; c < m.dim; ++c) out.push_back(m.at(static_cast<std::int64_t>(id), c));
  }
  return out;
}

/// Values in double and, with each, a bound on the error of the float computation (Higham: a sum of
/// n terms taken left to right is off by at most (n - 1)·u·Σ|terms|, then divided as the value is).
struct Approximate {
  std::vector<double> values;
  std::vector<double> bounds;
};

/// torch.nn.EmbeddingBag's definition: bag b is entries [offsets[b], offsets[b+1]); padding entries
/// are skipped and not counted; ids outside the table are counted rows of zeros; mean divides by Σw,
/// sqrtn by √Σw², and a bag whose denominator is 0 (empty, all padding, weights cancelling) is zeros;
/// max takes each column's largest value over the counted entries.
template <class Index>
Approximate pooled(const Matrix& m, const std::vector<Index>& ids, const std::vector<std::int64_t>& offsets,
                   PoolingMode mode, const std::vector<float>& sample_weights) {
  constexpr double kUnitRoundoff = 0x1p-24;
  Approximate out;
  for (std::size_t b = 0; b + 1 < offsets.size(); ++b) {
    const auto dim = static_cast<std::size_t>(m.dim);
    std::vector<double> sum(dim, 0.0), magnitude(dim, 0.0), max(dim, 0.0);
    double weight_sum = 0, weight_squares = 0, count = 0;
    for (std::int64_t j = offsets[b]; j < offsets[b + 1]; ++j) {
      const auto id = static_cast<std::int64_t>(ids[static_cast<std::size_t>(j)]);
      if (m.padding(id)) continue;
      const double w = sample_weights.empty() ? 1.0 : sample_weights[static_cast<std::size_t>(j)];
      weight_sum += w;
      weight_squares += w * w;
      for (std::size_t c = 0; c < dim; ++c) {
        const double v = m.at(id, static_cast<std::int64_t>(c));
        sum[c] += w * v;
        magnitude[c] += std::abs(w * v);
        max[c] = count == 0 ? v : std::max(max[c], v);
      }
      count += 1;
    }
    double denominator = 1.0;
    if (mode == PoolingMode::mean) denominator = weight_sum;
    if (mode == PoolingMode::sqrtn) denominator = std::sqrt(weight_squares);
    for (std::size_t c = 0; c < dim; ++c) {
      const bool zero = denominator == 0;
      const double value = mode == PoolingMode::max ? max[c] : zero ? 0.0 : sum[c] / denominator;
      const double bound =
          mode == PoolingMode::max || zero ? 0.0 : (count + 2) * kUnitRoundoff * magnitude[c] / std::abs(denominator);
      out.values.push_back(value);
      out.bounds.push_back(bound + 1e-6 * std::abs(value));
    }
  }
  return out;
}

/// Positions summed sequentially before a piece sum is formed (docs: the canonical order).
constexpr std::size_t kPieceSize = 32;

/// Folds per-position gradient rows (`rows`, positions × dim) by id in the canonical order: each
/// id's positions in increasing order, cut into pieces of 32 summed left to right from their first
/// row, the piece sums added left to right from the first. Positions whose `keep` is false (padding,
/// out-of-range ids) are left out.
inline SparseGrad fold(const std::vector<std::int64_t>& ids, const std::vector<bool>& keep,
                       const std::vector<float>& rows, std::int64_t dim) {
  const auto d = static_cast<std::size_t>(dim);
  std::map<std::int64_t, std::vector<std::size_t>> positions;
  for (std::size_t p = 0; p < ids.size(); ++p) {
    if (keep[p]) positions[ids[p]].push_back(p);
  }
  SparseGrad out;
  out.dim = dim;
  for (const auto& [id, list] : positions) {
    out.unique_ids.push_back(id);
    std::vector<float> total(d);
    for (std::size_t start = 0; start < list.size(); start += kPieceSize) {
      std::vector<float> piece(rows.begin() + static_cast<std::ptrdiff_t>(list[start] * d),
                               rows.begin() + static_cast<std::ptrdiff_t>((list[start] + 1) * d));
      for (std::size_t k = start + 1; k < std::min(list.size(), start + kPieceSize); ++k) {
        for (std::size_t c = 0; c < d; ++c) piece[c] += rows[list[k] * d + c];
      }
      for (std::size_t c = 0; c < d; ++c) total[c] = start == 0 ? piece[c] : total[c] + piece[c];
    }
    out.rows.insert(out.rows.end(), total.begin(), total.end());
  }
  return out;
}

/// The sparse gradient of a lookup: each position's row of `grad_out` folded onto its id.
template <class Index>
SparseGrad sparse_grad(const Matrix& m, const std::vector<Index>& ids, const std::vector<float>& grad_out) {
  std::vector<std::int64_t> wide(ids.begin(), ids.end());
  std::vector<bool> keep(ids.size());
  for (std::size_t p = 0; p < ids.size(); ++p) keep[p] = m.in_range(wide[p]) && !m.padding(wide[p]);
  return fold(wide, keep, grad_out, m.dim);
}

/// The sparse gradient of pooled(): each counted entry receives its bag's gradient times w / the
/// bag's denominator (nothing when that is 0); under max each column's gradient goes to the first
/// entry holding the column's maximum. Then folded by id as sparse_grad is.
template <class Index>
SparseGrad sparse_grad_pooled(const Matrix& m, const std::vector<Index>& ids, const std::vector<std::int64_t>& offsets,
                              PoolingMode mode, const std::vector<float>& sample_weights,
                              const std::vector<float>& grad_bags) {
  const auto d = static_cast<std::size_t>(m.dim);
  std::vector<std::int64_t> wide(ids.begin(), ids.end());
  std::vector<bool> keep(ids.size());
  std::vector<float> entries(ids.size() * d, 0.0f);
  for (std::size_t b = 0; b + 1 < offsets.size(); ++b) {
    const auto begin = static_cast<std::size_t>(offsets[b]), end = static_cast<std::size_t>(offsets[b + 1]);
    const float* g = grad_bags.data() + b * d;
    if (mode == PoolingMode::max) {
      for (std::size_t c = 0; c < d; ++c) {
        std::optional<std::size_t> best;
        for (std::size_t j = begin; j < end; ++j) {
          if (m.padding(wide[j])) continue;
          const auto column = static_cast<std::int64_t>(c);
          if (!best || m.at(wide[j], column) > m.at(wide[*best], column)) best = j;
        }
        if (best) entries[*best * d + c] = g[c];
      }
    } else {
      double weight_sum = 0, weight_squares = 0;
      for (std::size_t j = begin; j < end; ++j) {
        if (m.padding(wide[j])) continue;
        const double w = sample_weights.empty() ? 1.0 : sample_weights[j];
        weight_sum += w;
        weight_squares += w * w;
      }
      double denominator = 1.0;
      if (mode == PoolingMode::mean) denominator = weight_sum;
      if (mode == PoolingMode::sqrtn) denominator = std::sqrt(weight_squares);
      for (std::size_t j = begin; j < end; ++j) {
        if (m.padding(wide[j]) || denominator == 0) continue;
        const double w = sample_weights.empty() ? 1.0 : sample_weights[j];
        for (std::size_t c = 0; c < d; ++c) entries[j * d + c] = static_cast<float>(g[c] * w / denominator);
      }
    }
  }
  for (std::size_t p = 0; p < ids.size(); ++p) keep[p] = m.in_range(wide[p]) && !m.padding(wide[p]);
  return fold(wide, keep, entries, m.dim);
}

/// A table's weights and optimizer state, stepped the textbook way (Keras 3's formulas in float;
/// FBGEMM's row-wise Adagrad): for each touched row, the gradient plus the regularizer's (from the
/// weight before the step), decoupled weight decay, the optimizer's update, then the constraint.
/// Under lazy = false every row but padding_idx, as Keras steps its dense gradient: an untouched
/// row with a zero gradient. slot0 and slot1 are the table's state arrays in
/// optimizer_state_names() order.
struct Trainer {
  TableConfig config;
  std::vector<float> weights, slot0, slot1;
  std::int64_t step = 0;

  void apply(const SparseGrad& grad) {
    ++step;
    const auto dim = static_cast<std::size_t>(config.output_dim);
    if (config.optimizer.lazy) {
      for (std::size_t u = 0; u < grad.unique_ids.size(); ++u) {
        update(static_cast<std::size_t>(grad.unique_ids[u]), grad.rows.data() + u * dim);
      }
      return;
    }
    const std::vector<float> zeros(dim, 0.0f);
    for (std::int64_t row = 0; row < config.input_dim; ++row) {
      if (config.padding_idx == row) continue;
      const auto found = std::find(grad.unique_ids.begin(), grad.unique_ids.end(), row);
      const auto u = static_cast<std::size_t>(found - grad.unique_ids.begin());
      update(static_cast<std::size_t>(row), found == grad.unique_ids.end() ? zeros.data() : grad.rows.data() + u * dim);
    }
  }

  /// One row's step from its folded gradient row `grad_row`.
  void update(std::size_t row, const float* grad_row) {
    const OptimizerConfig& o = config.optimizer;
    const auto dim = static_cast<std::size_t>(config.output_dim);
    const float lr = static_cast<float>(o.learning_rate);
    const Regularizer penalty = config.embeddings_regularizer.value_or(Regularizer{});
    float* w = weights.data() + row * dim;
    std::vector<float> g(dim);
    for (std::size_t c = 0; c < dim; ++c) {
      g[c] = grad_row[c];
      const float sign = w[c] > 0 ? 1.0f : w[c] < 0 ? -1.0f : 0.0f;
      if (penalty.l1 != 0) g[c] += static_cast<float>(penalty.l1) * sign;
      if (penalty.l2 != 0) g[c] += 2.0f * static_cast<float>(penalty.l2) * w[c];
    }
    float row_accumulator = 0;
    if (o.kind == OptimizerKind::rowwise_adagrad) {
      double squares = 0;
      for (std::size_t c = 0; c < dim; ++c) squares += static_cast<double>(g[c]) * g[c];
      slot0[row] += static_cast<float>(squares / static_cast<double>(dim));
      row_accumulator = slot0[row];
    }
    for (std::size_t c = 0; c < dim; ++c) {
      const std::size_t i = row * dim + c;
      if (o.weight_decay) w[c] = w[c] - w[c] * static_cast<float>(*o.weight_decay) * lr;
      switch (o.kind) {
        case OptimizerKind::sgd:
          if (o.momentum == 0) {
            w[c] -= g[c] * lr;
          } else {
            const float mu = static_cast<float>(o.momentum);
            slot0[i] = slot0[i] * mu - g[c] * lr;
            w[c] += o.nesterov ? slot0[i] * mu - g[c] * lr : slot0[i];
          }
          break;
        case OptimizerKind::adagrad:
          slot0[i] += g[c] * g[c];
          w[c] -= lr * g[c] / std::sqrt(slot0[i] + static_cast<float>(o.epsilon));
          break;
        case OptimizerKind::rowwise_adagrad:
          w[c] -= g[c] * (lr / (std::sqrt(row_accumulator) + static_cast<float>(o.epsilon)));
          break;
        case OptimizerKind::adam: {
          const float b1 = static_cast<float>(o.beta_1), b2 = static_cast<float>(o.beta_2);
          const auto t = static_cast<float>(step);
          const float alpha = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
          slot0[i] += (g[c] - slot0[i]) * static_cast<float>(1.0 - o.beta_1);
          slot1[i] += (g[c] * g[c] - slot1[i]) * static_cast<float>(1.0 - o.beta_2);
          w[c] -= slot0[i] * alpha / (std::sqrt(slot1[i]) + static_cast<float>(o.epsilon));
          break;
        }
        case OptimizerKind::ftrl: {
          const float power = static_cast<float>(-o.learning_rate_power);
          const float l1 = static_cast<float>(o.l1_regularization_strength);
          const float l2 = static_cast<float>(o.l2_regularization_strength) + static_cast<float>(o.beta) / (2 * lr);
          const float shrunk = g[c] + 2 * static_cast<float>(o.l2_shrinkage_regularization_strength) * w[c];
          const float next = slot0[i] + g[c] * g[c];
          slot1[i] += shrunk - (std::pow(next, power) - std::pow(slot0[i], power)) / lr * w[c];
          const float quadratic = std::pow(next, power) / lr + 2 * l2;
          w[c] = (std::min(std::max(slot1[i], -l1), l1) - slot1[i]) / quadratic;
          slot0[i] = next;
          break;
        }
        case OptimizerKind::custom: break;
      }
    }
    constrain(w, dim);
  }

  void constrain(float* w, std::size_t dim) const {
    const Constraint& k = config.embeddings_constraint;
    if (k.kind == ConstraintKind::none) return;
    double squares = 0;
    for (std::size_t c = 0; c < dim; ++c) squares += static_cast<double>(w[c]) * w[c];
    const double norm = std::sqrt(squares);
    constexpr double kEpsilon = 1e-7;  // Keras's backend epsilon, added to the norm
    for (std::size_t c = 0; c < dim; ++c) {
      switch (k.kind) {
        case ConstraintKind::max_norm:
          w[c] = static_cast<float>(w[c] * (std::min(norm, k.max_value) / (kEpsilon + norm)));
          break;
        case ConstraintKind::unit_norm: w[c] = static_cast<float>(w[c] / (kEpsilon + norm)); break;
        case ConstraintKind::non_neg: w[c] = w[c] >= 0 ? w[c] : 0.0f; break;
        case ConstraintKind::none: break;
      }
    }
  }
};

}  // namespace embedkit::testing::reference
