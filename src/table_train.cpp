// Training: sparse gradients (sort, run-length encode, canonical reduction) and optimizer steps.
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include "../cpu/optimizer_apply.hpp"
#include "../cpu/pooled_backward.hpp"
#include "../cpu/segment_reduce.hpp"
#include "../cpu/segments.hpp"
#include "log.hpp"
#include "shape.hpp"
#include "table_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace embedkit {
namespace {

using Impl = EmbeddingTable::Impl;

// The scalars of step t (1-based), in float as Keras computes float32 variables.
detail::StepScalars step_scalars(const TableConfig& config, std::int64_t t) {
  const OptimizerConfig& o = config.optimizer;
  detail::StepScalars s;
  s.learning_rate = static_cast<float>(o.learning_rate);
  s.weight_decay = static_cast<float>(o.weight_decay.value_or(0.0));
  if (config.embeddings_regularizer) {
    s.regularizer_l1 = static_cast<float>(config.embeddings_regularizer->l1);
    s.regularizer_l2 = static_cast<float>(config.embeddings_regularizer->l2);
  }
  s.momentum = static_cast<float>(o.momentum);
  s.nesterov = o.nesterov;
  s.epsilon = static_cast<float>(o.epsilon);
  s.beta_1 = static_cast<float>(o.beta_1);
  s.beta_2 = static_cast<float>(o.beta_2);
  const float step = static_cast<float>(t);
  s.adam_alpha = s.learning_rate * std::sqrt(1.0f - std::pow(s.beta_2, step)) / (1.0f - std::pow(s.beta_1, step));
  s.ftrl_power = static_cast<float>(-o.learning_rate_power);
  s.ftrl_l1 = static_cast<float>(o.l1_regularization_strength);
  s.ftrl_l2 = static_cast<float>(o.l2_regularization_strength) + static_cast<float>(o.beta) / (2.0f * s.learning_rate);
  s.ftrl_l2_shrinkage = static_cast<float>(o.l2_shrinkage_regularization_strength);
  return s;
}

void check_grad_size(std::string_view name, std::size_t got, std::int64_t rows, std::int64_t dim,
                     std::string_view shape_text) {
  if (got != static_cast<std::size_t>(rows) * static_cast<std::size_t>(dim)) {
    throw Error(Status::shape_mismatch,
                fmt::format("{} must hold {} x {} floats for {}, got {}", name, rows, dim, shape_text, got));
  }
}

// Folds the positions grouped in `segments`, each position's gradient row given by `accumulate`.
template <class Accumulate>
SparseGrad fold(const cpu::Segments& segments, std::int64_t dim, const Accumulate& accumulate) {
  SparseGrad grad;
  grad.dim = dim;
  grad.unique_ids = segments.unique_ids;
  grad.rows.resize(static_cast<std::size_t>(segments.size() * dim));
  cpu::reduce_segments(segments, dim, accumulate, grad.rows.data());
  return grad;
}

SparseGrad lookup_gradient(Impl& impl, const IndexTensor& indices, std::span<const float> grad_out) {
  const TableConfig& config = impl.config;
  const std::int64_t dim = config.output_dim;
  check_grad_size("grad_out", grad_out.size(), indices.size(), dim,
                  "indices of shape " + detail::format_shape(indices.shape()));
  return detail::with_ids(indices, [&](const auto* ids) {
    detail::check_ids(impl, indices, ids);
    const cpu::Segments segments =
        cpu::group_positions(ids, indices.size(), config.input_dim, config.padding_idx.value_or(-1));
    const float* g = grad_out.data();
    return fold(segments, dim, [g, dim](std::int64_t p, float* acc, bool first) {
      const float* row = g + p * dim;
      if (first) {
        std::copy(row, row + dim, acc);
      } else {
        for (std::int64_t c = 0; c < dim; ++c) acc[c] += row[c];
      }
    });
  });
}

SparseGrad pooled_gradient(Impl& impl, const IndexTensor& indices, std::span<const std::int64_t> offsets,
                           PoolingMode mode, std::span<const float> per_sample_weights,
                           std::span<const float> grad_bags) {
  const TableConfig& config = impl.config;
  const std::int64_t dim = config.output_dim;
  const std::int64_t bags = detail::check_pooled_arguments(indices, offsets, mode, per_sample_weights);
  check_grad_size("grad_bags", grad_bags.size(), bags, dim, fmt::format("{} bags", bags));
  const std::int64_t padding = config.padding_idx.value_or(-1);
  const float* g = grad_bags.data();
  return detail::with_ids(indices, [&](const auto* ids) {
    detail::check_ids(impl, indices, ids);
    const std::int64_t n = indices.size();
    const cpu::Segments segments = cpu::group_positions(ids, n, config.input_dim, padding);
    std::vector<std::int64_t> bag_of(static_cast<std::size_t>(n));
    if (mode == PoolingMode::max) {
      std::vector<std::int64_t> argmax(static_cast<std::size_t>(bags * dim));
      cpu::pooled_argmax(impl.weights.get(), config.input_dim, dim, ids, offsets.data(), bags, padding, argmax.data());
      for (std::int64_t b = 0; b < bags; ++b) std::fill(bag_of.begin() + offsets[b], bag_of.begin() + offsets[b + 1], b);
      return fold(segments, dim, [&](std::int64_t p, float* acc, bool first) {
        const std::int64_t at = bag_of[p] * dim;
        for (std::int64_t c = 0; c < dim; ++c) {
          const float v = argmax[at + c] == p ? g[at + c] : 0.0f;
          acc[c] = first ? v : acc[c] + v;
        }
      });
    }
    std::vector<float> scales(static_cast<std::size_t>(n));
    cpu::pooled_entry_scales(ids, offsets.data(), bags, per_sample_weights.empty() ? nullptr : per_sample_weights.data(),
                             mode, padding, scales.data(), bag_of.data());
    return fold(segments, dim, [&](std::int64_t p, float* acc, bool first) {
      const float* row = g + bag_of[p] * dim;
      const float scale = scales[p];
      for (std::int64_t c = 0; c < dim; ++c) acc[c] = first ? row[c] * scale : acc[c] + row[c] * scale;
    });
  });
}

// Rows that must not be applied: padding, and non-finite rows under "skip". Throws under "error".
std::vector<std::uint8_t> rows_to_skip(Impl& impl, const SparseGrad& grad) {
  const TableConfig& config = impl.config;
  const std::int64_t unique = static_cast<std::int64_t>(grad.unique_ids.size()), dim = grad.dim;
  std::vector<std::uint8_t> skip(static_cast<std::size_t>(unique), 0);
  std::int64_t nonfinite = 0;
  if (config.nonfinite_gradients != NonFiniteGradients::apply) {
#pragma omp parallel for schedule(static) reduction(+ : nonfinite)
    for (std::int64_t u = 0; u < unique; ++u) {
      const float* row = grad.rows.data() + u * dim;
      const bool finite = std::all_of(row, row + dim, [](float v) { return std::isfinite(v); });
      skip[u] = finite ? 0 : 1;
      nonfinite += finite ? 0 : 1;
    }
  }
  if (nonfinite > 0) {
    const auto u = static_cast<std::size_t>(std::find(skip.begin(), skip.end(), 1) - skip.begin());
    const float* row = grad.rows.data() + u * dim;
    const auto column = std::find_if(row, row + dim, [](float v) { return !std::isfinite(v); }) - row;
    const std::string first = fmt::format("the gradient row of id {} holds {} at column {}", grad.unique_ids[u],
                                          row[column], column);
    if (config.nonfinite_gradients == NonFiniteGradients::error) {
      throw Error(Status::invalid_argument,
                  fmt::format("table '{}': {} of {} gradient rows are not finite; {} (nonfinite_gradients is 'error')",
                              config.name, nonfinite, unique, first));
    }
    impl.nonfinite_rows += nonfinite;
    detail::logger().warn("table '{}': skipped {} non-finite gradient rows ({} so far); {}", config.name, nonfinite,
                          impl.nonfinite_rows, first);
  }
  if (config.padding_idx) {
    const auto found = std::lower_bound(grad.unique_ids.begin(), grad.unique_ids.end(), *config.padding_idx);
    if (found != grad.unique_ids.end() && *found == *config.padding_idx) skip[found - grad.unique_ids.begin()] = 1;
  }
  return skip;
}

// The user's callback on the calling thread, in increasing id order.
void apply_custom(Impl& impl, const SparseGrad& grad, const std::vector<std::uint8_t>& skip,
                  const detail::StepScalars& scalars) {
  const TableConfig& config = impl.config;
  const std::int64_t dim = config.output_dim;
  float* state = impl.slots.empty() ? nullptr : impl.slots.front().values.get();
  const std::int64_t width = config.optimizer.custom_state_width;
  std::vector<float> g(static_cast<std::size_t>(dim));
  for (std::size_t u = 0; u < grad.unique_ids.size(); ++u) {
    if (skip[u] != 0) continue;
    const std::int64_t id = grad.unique_ids[u];
    float* w = impl.weights.get() + id * dim;
    for (std::int64_t c = 0; c < dim; ++c) {
      g[c] = detail::regularized_gradient(grad.rows[u * dim + c], w[c], scalars);
      w[c] = detail::decayed_weight(w[c], scalars);
    }
    config.optimizer.custom_update(id, w, g.data(), state != nullptr ? state + id * width : nullptr,
                                   static_cast<int>(dim));
    cpu::constrain_row(w, dim, config.embeddings_constraint);
  }
}

// One optimizer step, under the writer lock; validation is done, so nothing here throws but
// the non-finite check, which runs before anything changes.
void apply_step(Impl& impl, const SparseGrad& grad) {
  const TableConfig& config = impl.config;
  if (!config.trainable) {
    if (!impl.frozen_step_logged) {
      detail::logger().info("table '{}' is not trainable: train steps leave it unchanged", config.name);
      impl.frozen_step_logged = true;
    }
    return;
  }
  const std::vector<std::uint8_t> skip = rows_to_skip(impl, grad);
  const detail::StepScalars scalars = step_scalars(config, impl.step + 1);
  const auto count = static_cast<std::int64_t>(grad.unique_ids.size());
  if (config.optimizer.kind == OptimizerKind::custom) {
    apply_custom(impl, grad, skip, scalars);
  } else {
    cpu::RowUpdate update;
    update.weights = impl.weights.get();
    update.dim = config.output_dim;
    update.kind = config.optimizer.kind;
    update.slot0 = impl.slots.size() > 0 ? impl.slots[0].values.get() : nullptr;
    update.slot1 = impl.slots.size() > 1 ? impl.slots[1].values.get() : nullptr;
    update.scalars = scalars;
    update.constraint = config.embeddings_constraint;
    if (config.optimizer.kind == OptimizerKind::adam && !config.optimizer.lazy) {
      cpu::update_every_row(update, config.input_dim, grad.unique_ids.data(), grad.rows.data(), skip.data(), count,
                            config.padding_idx.value_or(-1));
    } else {
      cpu::update_rows(update, grad.unique_ids.data(), grad.rows.data(), skip.data(), count);
    }
  }
  ++impl.step;
}

void check_sparse_grad(const TableConfig& config, const SparseGrad& grad) {
  if (grad.dim != config.output_dim) {
    throw Error(Status::shape_mismatch,
                fmt::format("sparse gradient dim {} does not match output_dim {}", grad.dim, config.output_dim));
  }
  const auto unique = static_cast<std::int64_t>(grad.unique_ids.size());
  check_grad_size("sparse gradient rows", grad.rows.size(), unique, grad.dim, fmt::format("{} unique ids", unique));
  for (std::int64_t u = 0; u < unique; ++u) {
    const std::int64_t id = grad.unique_ids[u];
    if (id < 0 || id >= config.input_dim) {
      throw Error(Status::out_of_range, fmt::format("unique_ids[{}] = {} is not in [0, {})", u, id, config.input_dim));
    }
    if (u > 0 && id <= grad.unique_ids[u - 1]) {
      throw Error(Status::invalid_argument,
                  fmt::format("unique_ids[{}] = {} does not exceed unique_ids[{}] = {}; ids must be strictly increasing",
                              u, id, u - 1, grad.unique_ids[u - 1]));
    }
  }
}

}  // namespace

SparseGrad EmbeddingTable::sparse_grad(const IndexTensor& indices, std::span<const float> grad_out) const {
  std::shared_lock lock(impl_->mutex);
  return lookup_gradient(*impl_, indices, grad_out);
}

SparseGrad EmbeddingTable::sparse_grad_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                              PoolingMode mode, std::span<const float> per_sample_weights,
                                              std::span<const float> grad_bags) const {
  std::shared_lock lock(impl_->mutex);
  return pooled_gradient(*impl_, indices, offsets, mode, per_sample_weights, grad_bags);
}

void EmbeddingTable::apply(const SparseGrad& grad) {
  check_sparse_grad(impl_->config, grad);
  std::unique_lock lock(impl_->mutex);
  apply_step(*impl_, grad);
}

void EmbeddingTable::train_step(const IndexTensor& indices, std::span<const float> grad_out) {
  std::unique_lock lock(impl_->mutex);
  apply_step(*impl_, lookup_gradient(*impl_, indices, grad_out));
}

void EmbeddingTable::train_step_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                       PoolingMode mode, std::span<const float> per_sample_weights,
                                       std::span<const float> grad_bags) {
  std::unique_lock lock(impl_->mutex);
  apply_step(*impl_, pooled_gradient(*impl_, indices, offsets, mode, per_sample_weights, grad_bags));
}

const OptimizerConfig& EmbeddingTable::optimizer() const noexcept { return impl_->config.optimizer; }

void EmbeddingTable::set_learning_rate(double learning_rate) {
  OptimizerConfig changed = impl_->config.optimizer;
  changed.learning_rate = learning_rate;
  changed.validate();
  std::unique_lock lock(impl_->mutex);
  impl_->config.optimizer.learning_rate = learning_rate;
}

std::vector<std::string> EmbeddingTable::optimizer_state_names() const {
  std::vector<std::string> names;
  for (const auto& slot : impl_->slots) names.push_back(slot.name);
  return names;
}

Array<float> EmbeddingTable::optimizer_state(std::string_view name) const {
  for (const auto& slot : impl_->slots) {
    if (slot.name != name) continue;
    Array<float> state;
    state.shape = slot.width == 1 && impl_->config.optimizer.kind == OptimizerKind::rowwise_adagrad
                      ? std::vector<std::int64_t>{input_dim()}
                      : std::vector<std::int64_t>{input_dim(), slot.width};
    std::shared_lock lock(impl_->mutex);
    state.values.assign(slot.values.get(), slot.values.get() + input_dim() * slot.width);
    return state;
  }
  throw Error(Status::invalid_argument,
              fmt::format("table '{}' has no optimizer state '{}' ({} keeps: {})", impl_->config.name, name,
                          to_string(impl_->config.optimizer.kind), fmt::join(optimizer_state_names(), ", ")));
}

double EmbeddingTable::regularization_loss() const {
  if (!impl_->config.embeddings_regularizer) return 0.0;
  const double l1 = impl_->config.embeddings_regularizer->l1, l2 = impl_->config.embeddings_regularizer->l2;
  const std::int64_t count = static_cast<std::int64_t>(impl_->weight_count());
  // Fixed chunks summed in order: the same double on any thread count.
  constexpr std::int64_t kChunk = 1 << 16;
  const std::int64_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
  std::shared_lock lock(impl_->mutex);
  const float* w = impl_->weights.get();
#pragma omp parallel for schedule(static)
  for (std::int64_t k = 0; k < chunks; ++k) {
    double sum = 0.0;
    for (std::int64_t i = k * kChunk; i < std::min(count, (k + 1) * kChunk); ++i) {
      sum += l1 * std::abs(static_cast<double>(w[i])) + l2 * static_cast<double>(w[i]) * w[i];
    }
    partial[k] = sum;
  }
  double total = 0.0;
  for (const double p : partial) total += p;
  return total;
}

void EmbeddingTable::apply_constraints() {
  std::unique_lock lock(impl_->mutex);
  const std::int64_t dim = output_dim();
#pragma omp parallel for schedule(static)
  for (std::int64_t id = 0; id < input_dim(); ++id) {
    cpu::constrain_row(impl_->weights.get() + id * dim, dim, impl_->config.embeddings_constraint);
  }
}

std::int64_t EmbeddingTable::nonfinite_gradient_rows() const noexcept { return impl_->nonfinite_rows; }

}  // namespace embedkit
