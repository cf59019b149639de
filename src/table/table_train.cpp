// Training: sparse gradients (sort, run-length encode, canonical reduction) and optimizer steps.
#include <embedkit/detail/pooling_math.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include "backend/backends.hpp"
#include "backend/staging.hpp"
#include "config/optimizer_rules.hpp"
#include "core/expects.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/shape.hpp"
#include "core/step_limit.hpp"
#include "table/pooled_entry_gradients.hpp"
#include "table/table_access.hpp"
#include "table/table_impl.hpp"
#include "table/table_steps.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <span>
#include <type_traits>
#include <vector>

namespace embedkit {
namespace {

using Impl = EmbeddingTable::Impl;

// A folded gradient for the ids of [row_begin, row_end), with the rows a step must leave alone.
struct Part {
  detail::FoldedGrad grad;
  detail::DeviceBuffer skip;  // uint8 per folded row
  std::int64_t row_begin = 0;
  std::int64_t row_end = 0;
};

// Flags the rows of `part` that hold NaN or infinity (and `padding`, for user gradients); returns
// how many are non-finite, and under "error" throws, naming the first, before anything changes.
std::int64_t flag_rows(Impl& impl, Part& part, const std::vector<std::uint8_t>& initial) {
  detail::Backend& backend = *impl.backend;
  part.skip = backend.allocate(std::max<std::size_t>(initial.size(), 1), "gradient row flags");
  backend.copy_from_host(part.skip.as<void>(), initial.data(), initial.size());
  if (impl.config.nonfinite_gradients == NonFiniteGradients::apply) return 0;
  const std::int64_t dim = impl.config.output_dim;
  const std::int64_t bad = backend.mark_nonfinite(part.grad, dim, part.skip.as<std::uint8_t>());
  if (bad > 0 && impl.config.nonfinite_gradients == NonFiniteGradients::error) {
    std::vector<std::uint8_t> flags(initial.size());
    backend.copy_to_host(flags.data(), part.skip.as<void>(), flags.size());
    std::size_t u = 0;
    std::vector<float> row(static_cast<std::size_t>(dim));
    std::int64_t id = 0;
    for (;; ++u) {
      if (flags[u] == 0) continue;
      backend.copy_to_host(row.data(), part.grad.rows.as<float>() + static_cast<std::int64_t>(u) * dim, row.size() * 4);
      backend.copy_to_host(&id, part.grad.ids.as<std::int64_t>() + u, sizeof id);
      if (!std::all_of(row.begin(), row.end(), [](float v) { return std::isfinite(v); })) break;
    }
    const auto column = std::find_if(row.begin(), row.end(), [](float v) { return !std::isfinite(v); }) - row.begin();
    throw Error(Status::invalid_argument,
                fmt::format("table '{}': {} gradient rows are not finite; the gradient row of id {} holds {} at "
                            "column {} (nonfinite_gradients is 'error')",
                            impl.config.name, bad, id, row[column], column));
  }
  return bad;
}

Part make_part(Impl& impl, detail::FoldedGrad grad, std::int64_t row_begin, std::int64_t row_end,
               std::int64_t* nonfinite) {
  Part part;
  part.grad = std::move(grad);
  part.row_begin = row_begin;
  part.row_end = row_end;
  *nonfinite += flag_rows(impl, part, std::vector<std::uint8_t>(static_cast<std::size_t>(part.grad.count), 0));
  return part;
}

// Runs `body(device_ids, device_grad)` on a lookup batch staged onto the table's backend.
template <class Index, class Body>
decltype(auto) with_staged_lookup(Impl& impl, const Index* ids, std::int64_t count, const float* grad_out,
                                  IndexType type, Body&& body) {
  const std::int64_t dim = impl.config.output_dim;
  detail::Staging staging(impl.call_memory());
  const detail::DeviceIds device_ids{staging.in(ids, static_cast<std::size_t>(count) * sizeof(Index), "gradient ids"),
                                     type, count};
  const auto* device_grad = static_cast<const float*>(
      staging.in(grad_out, static_cast<std::size_t>(count * dim) * sizeof(float), "upstream gradient"));
  return body(device_ids, device_grad);
}

// Folds positions `picked` of a lookup batch (all of them when empty) on the table's backend.
template <class Index>
detail::FoldedGrad fold_positions(Impl& impl, const Index* ids, std::int64_t count, const float* grad_out,
                                  IndexType type, detail::IdCheck* check) {
  return with_staged_lookup(impl, ids, count, grad_out, type,
                            [&](const detail::DeviceIds& device_ids, const float* device_grad) {
                              return impl.backend->fold_lookup_grad(impl.view(), device_ids, device_grad, check);
                            });
}

// The ids of a batch cut into `chunks` contiguous id ranges of about equal numbers of positions:
// each id's positions stay together and in order, so each range folds to the very rows the whole
// batch gives (the canonical order), and a step made of the parts equals the unchunked step.
template <class Index>
std::vector<std::int64_t> chunk_bounds(const Index* ids, std::int64_t count, std::int64_t input_dim, int chunks) {
  std::map<std::int64_t, std::int64_t> occurrences;
  for (std::int64_t p = 0; p < count; ++p) ++occurrences[static_cast<std::int64_t>(ids[p])];
  std::vector<std::int64_t> bounds = {0};
  std::int64_t seen = 0;
  for (const auto& [id, n] : occurrences) {
    if (seen >= count * static_cast<std::int64_t>(bounds.size()) / chunks && id > bounds.back()) bounds.push_back(id);
    seen += n;
  }
  bounds.push_back(input_dim);
  return bounds;
}

// Out-of-range ids are judged by `check` before anything else about the step.
template <class Index>
std::vector<Part> fold_lookup(Impl& impl, const Index* ids, std::int64_t count, const float* grad_out, IndexType type,
                              std::int64_t* nonfinite, detail::IdsCheck& check) {
  const std::int64_t dim = impl.config.output_dim, input_dim = impl.config.input_dim;
  // The chunked retry splits the batch on the host: ids and gradient in device memory are split
  // from host copies, made at the first retry.
  std::vector<Index> ids_copy;
  std::vector<float> grad_copy;
  const Index* host_ids = nullptr;
  const float* host_grad = nullptr;
  for (int chunks = 1;; chunks *= 2) {
    *nonfinite = 0;
    if (chunks > 1 && host_ids == nullptr) {
      const auto positions = static_cast<std::size_t>(count);
      host_ids = detail::on_host(impl.call_memory(), std::span<const Index>(ids, positions), ids_copy).data();
      host_grad =
          detail::on_host(impl.call_memory(), std::span<const float>(grad_out, positions * dim), grad_copy).data();
    }
    const std::vector<std::int64_t> bounds =
        chunks == 1 ? std::vector<std::int64_t>{0, input_dim} : chunk_bounds(host_ids, count, input_dim, chunks);
    try {
      std::vector<Part> parts;
      if (bounds.size() == 2) {
        detail::FoldedGrad grad = fold_positions(impl, ids, count, grad_out, type, check.report());
        check.result();
        parts.push_back(make_part(impl, std::move(grad), 0, input_dim, nonfinite));
        return parts;
      }
      // The parts hold only in-range ids: the whole batch is checked here.
      if (check.report() != nullptr) check.check_on_host();
      for (std::size_t k = 0; k + 1 < bounds.size(); ++k) {
        std::vector<Index> part_ids;
        std::vector<float> part_grad;
        for (std::int64_t p = 0; p < count; ++p) {
          const auto id = static_cast<std::int64_t>(host_ids[p]);
          if (id < bounds[k] || id >= bounds[k + 1]) continue;
          part_ids.push_back(host_ids[p]);
          part_grad.insert(part_grad.end(), host_grad + p * dim, host_grad + (p + 1) * dim);
        }
        parts.push_back(make_part(impl,
                                  fold_positions(impl, part_ids.data(), static_cast<std::int64_t>(part_ids.size()),
                                                 part_grad.data(), type, nullptr),
                                  bounds[k], bounds[k + 1], nonfinite));
      }
      return parts;
    } catch (const Error& e) {
      const bool splittable = static_cast<int>(bounds.size()) - 1 == chunks;  // fewer bounds: an id too hot to split
      if (e.status() != Status::out_of_memory || impl.backend->host_accessible() || (chunks > 1 && !splittable)) {
        if (e.status() == Status::out_of_memory && chunks > 1) {
          throw Error(Status::out_of_memory,
                      fmt::format("table '{}': the train step does not fit on {} even in {} chunks, as one id's rows "
                                  "need more than it can give: {}",
                                  impl.config.name, impl.backend->name(), chunks, e.what()));
        }
        throw;
      }
      detail::logger().warn("table '{}': {}; retrying the step in {} chunks", impl.config.name, e.what(), chunks * 2);
    }
  }
}

// The gradient row each entry of a pooled batch receives (detail::pooled_entry_gradients). Max
// needs the rows of the batch's ids: they are copied over one by one, a cost of the batch.
template <class Index>
std::vector<float> entry_gradients(Impl& impl, const Index* ids, std::int64_t count,
                                   std::span<const std::int64_t> offsets, std::int64_t bags, PoolingMode mode,
                                   std::span<const float> per_sample_weights, std::span<const float> grad_bags) {
  const std::int64_t dim = impl.config.output_dim;
  detail::CompactRows read;
  if (detail::picks_entry(mode)) {
    read.ids = detail::distinct_in_range(ids, count, impl.config.input_dim);
    read.rows.resize(read.ids.size() * static_cast<std::size_t>(dim));
    for (std::size_t k = 0; k < read.ids.size(); ++k) {
      impl.read_floats(static_cast<std::uint64_t>(read.ids[k] * dim), static_cast<std::uint64_t>(dim),
                       read.rows.data() + static_cast<std::int64_t>(k) * dim);
    }
  }
  return detail::pooled_entry_gradients(ids, count, offsets, bags, mode, per_sample_weights, grad_bags, dim,
                                        impl.view().padding, read);
}

// A pooled batch's inputs on the table's backend.
struct StagedPooled {
  detail::DeviceIds ids;
  const std::int64_t* offsets;
  const float* sample_weights;  // NULL: none
  const float* grad_bags;
};

// Runs `body(staged)` on a pooled batch staged onto the table's backend.
template <class Body>
decltype(auto) with_staged_pooled(Impl& impl, const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                  std::span<const float> per_sample_weights, std::span<const float> grad_bags,
                                  Body&& body) {
  detail::Staging staging(impl.call_memory());
  const detail::DeviceIds ids{staging.in(indices.data(), detail::index_bytes(indices), "gradient ids"), indices.type(),
                              indices.size()};
  const auto* device_offsets =
      static_cast<const std::int64_t*>(staging.in(offsets.data(), offsets.size_bytes(), "gradient offsets"));
  const auto* device_weights = per_sample_weights.empty()
                                   ? nullptr
                                   : static_cast<const float*>(staging.in(per_sample_weights.data(),
                                                                          per_sample_weights.size_bytes(), "weights"));
  const auto* device_grad =
      static_cast<const float*>(staging.in(grad_bags.data(), grad_bags.size_bytes(), "bag gradient"));
  return body(StagedPooled{ids, device_offsets, device_weights, device_grad});
}

std::vector<Part> fold_pooled(Impl& impl, const IndexTensor& indices, std::span<const std::int64_t> offsets,
                              std::int64_t bags, PoolingMode mode, std::span<const float> per_sample_weights,
                              std::span<const float> grad_bags, std::int64_t* nonfinite, detail::IdsCheck& check) {
  detail::Backend& backend = *impl.backend;
  try {
    return with_staged_pooled(impl, indices, offsets, per_sample_weights, grad_bags, [&](const StagedPooled& in) {
      std::vector<Part> parts;
      *nonfinite = 0;
      detail::FoldedGrad grad = backend.fold_pooled_grad(impl.view(), in.ids, in.offsets, bags, in.sample_weights, mode,
                                                         in.grad_bags, check.report());
      check.result();
      parts.push_back(make_part(impl, std::move(grad), 0, impl.config.input_dim, nonfinite));
      return parts;
    });
  } catch (const Error& e) {
    if (e.status() != Status::out_of_memory || backend.host_accessible()) throw;
    // Too big for the device at once: each entry's gradient row, folded as a plain batch in chunks.
    detail::logger().warn("table '{}': {}; retrying the pooled step as per-entry rows in chunks", impl.config.name,
                          e.what());
  }
  // Each entry's gradient is made on the host: arguments in device memory are read from copies.
  std::vector<std::int64_t> offsets_copy;
  std::vector<float> weights_copy, grad_copy;
  const auto host_offsets = detail::on_host(impl.call_memory(), offsets, offsets_copy);
  const auto host_weights = detail::on_host(impl.call_memory(), per_sample_weights, weights_copy);
  const auto host_grad = detail::on_host(impl.call_memory(), grad_bags, grad_copy);
  return detail::with_ids(indices, [&](const auto* ids) {
    using Index = std::remove_cv_t<std::remove_pointer_t<decltype(ids)>>;
    std::vector<Index> ids_copy;
    const Index* host_ids =
        detail::on_host(impl.call_memory(), std::span<const Index>(ids, static_cast<std::size_t>(indices.size())),
                        ids_copy)
            .data();
    const std::vector<float> rows =
        entry_gradients(impl, host_ids, indices.size(), host_offsets, bags, mode, host_weights, host_grad);
    return fold_lookup(impl, host_ids, indices.size(), rows.data(), indices.type(), nonfinite, check);
  });
}

// Where a custom update left row `w` (dim floats) and its state (width floats) non-finite: the first
// element keeps_update refuses, as "weights[2] = inf", or "" when the row passes.
std::string custom_update_fault(const float* w, std::int64_t dim, const float* state, std::int64_t width) {
  for (std::int64_t c = 0; c < dim; ++c) {
    if (!detail::keeps_update(w[c], 0.0f, 0.0f)) return fmt::format("weights[{}] = {}", c, w[c]);
  }
  for (std::int64_t k = 0; k < width; ++k) {
    if (!detail::keeps_update(0.0f, state[k], 0.0f)) return fmt::format("state[{}] = {}", k, state[k]);
  }
  return {};
}

// The user's callback on the calling thread, in increasing id order (the table is on the CPU).
// Its results are judged as a built-in optimizer's are (detail::keeps_update, before the
// constraint): a row it turns non-finite is put back and counted (skip), or fails the step with
// every row put back (error). Returns the rows put back under skip.
std::int64_t apply_custom(Impl& impl, const std::vector<Part>& parts, const detail::StepScalars& scalars) {
  const TableConfig& config = impl.config;
  const std::int64_t dim = config.output_dim;
  float* state = impl.slots.empty() ? nullptr : impl.slots.front().as<float>();
  const std::int64_t width = state != nullptr ? config.optimizer.custom_state_width : 0;
  const bool judge = config.nonfinite_gradients != NonFiniteGradients::apply;
  // The callback is the user's: if it throws, or its update fails the step, the rows already
  // updated are put back, so a failed step changes nothing. The copy follows the batch, not the table.
  std::vector<float> saved_weights, saved_state;
  for (const Part& part : parts) {
    const auto* ids = part.grad.ids.as<const std::int64_t>();
    for (std::int64_t u = 0; u < part.grad.count; ++u) {
      const float* w = impl.weights.as<const float>() + ids[u] * dim;
      saved_weights.insert(saved_weights.end(), w, w + dim);
      if (state != nullptr) saved_state.insert(saved_state.end(), state + ids[u] * width, state + (ids[u] + 1) * width);
    }
  }
  // Puts row `ids[u]` back from saved row `at`.
  const auto restore = [&](std::int64_t id, std::size_t at) {
    std::copy_n(saved_weights.begin() + static_cast<std::ptrdiff_t>(at) * dim, dim,
                impl.weights.as<float>() + id * dim);
    if (state != nullptr) {
      std::copy_n(saved_state.begin() + static_cast<std::ptrdiff_t>(at) * width, width, state + id * width);
    }
  };
  std::vector<float> g(static_cast<std::size_t>(dim));
  std::int64_t rejected = 0;
  try {
    std::size_t at = 0;
    for (const Part& part : parts) {
      const auto* ids = part.grad.ids.as<const std::int64_t>();
      const auto* rows = part.grad.rows.as<const float>();
      const auto* skip = part.skip.as<const std::uint8_t>();
      for (std::int64_t u = 0; u < part.grad.count; ++u, ++at) {
        if (skip[u] != 0) continue;
        float* w = impl.weights.as<float>() + ids[u] * dim;
        float* row_state = state != nullptr ? state + ids[u] * width : nullptr;
        for (std::int64_t c = 0; c < dim; ++c) {
          g[c] = detail::regularized_gradient(rows[u * dim + c], w[c], scalars);
          w[c] = detail::decayed_weight(w[c], scalars);
        }
        config.optimizer.custom_update(ids[u], w, g.data(), row_state, static_cast<int>(dim));
        const std::string fault = judge ? custom_update_fault(w, dim, row_state, width) : std::string();
        EMBEDKIT_EXPECTS(fault.empty() || config.nonfinite_gradients != NonFiniteGradients::error,
                         Status::invalid_argument,
                         "table '{}': the custom update of id {} is not finite ({}, from finite inputs); nothing "
                         "changed (nonfinite_gradients is 'error')",
                         config.name, ids[u], fault);
        if (!fault.empty()) {
          restore(ids[u], at);
          ++rejected;
          continue;
        }
        detail::host_ops().constrain_row(w, dim, config.embeddings_constraint);
      }
    }
  } catch (...) {
    std::size_t at = 0;
    for (const Part& part : parts) {
      const auto* ids = part.grad.ids.as<const std::int64_t>();
      for (std::int64_t u = 0; u < part.grad.count; ++u, ++at) restore(ids[u], at);
    }
    throw;
  }
  return rejected;
}

// Rows a step left alone as non-finite: counted on the table and said once per step.
void record_nonfinite(Impl& impl, std::int64_t nonfinite) {
  if (nonfinite == 0) return;
  const std::int64_t total = impl.nonfinite_rows.fetch_add(nonfinite) + nonfinite;
  detail::logger().warn("table '{}': skipped {} rows whose gradient or update held NaN or infinity ({} so far)",
                        impl.config.name, nonfinite, total);
}

// What the next step does to the rows it updates (the row range is set per part). Past the last
// step the count would overflow: the step is refused, not wrapped, before anything changes.
detail::StepPlan step_plan(const Impl& impl) {
  const TableConfig& config = impl.config;
  EMBEDKIT_EXPECTS(impl.step < detail::kMaxStep, Status::invalid_argument,
                   "table '{}' is at step {}, the last step a table takes (steps count to 2^53): no further train step",
                   config.name, impl.step.load());
  detail::StepPlan plan;
  plan.rule = detail::step_rule(config, impl.step + 1);
  // Narrow rows' write-back: stochastic bits keyed by the table's seed and this step.
  plan.rule.rounding = {config.rounding, *config.seed, static_cast<std::uint64_t>(impl.step + 1), impl.matrix_row_first,
                        impl.matrix_row_stride};
  plan.dense = detail::updates_every_row(config);
  plan.row_end = config.input_dim;
  return plan;
}

// Under "error", a row whose update would not be finite fails the step before anything changes.
void refuse_nonfinite_updates(Impl& impl, const std::vector<Part>& parts, detail::StepPlan plan) {
  if (impl.config.nonfinite_gradients != NonFiniteGradients::error) return;
  for (const Part& part : parts) {
    plan.row_begin = part.row_begin;
    plan.row_end = part.row_end;
    const std::int64_t id =
        impl.backend->first_rejected_update(impl.view(), part.grad, part.skip.as<std::uint8_t>(), plan);
    EMBEDKIT_EXPECTS(id < 0, Status::invalid_argument,
                     "table '{}': the update of id {} is not finite (its weights or optimizer state would hold NaN or "
                     "infinity, from finite inputs); nothing changed (nonfinite_gradients is 'error')",
                     impl.config.name, id);
  }
}

// The second half of a step, once every part is folded and checked: past the step plan (which
// refuses a step past the last) and the error policy's check of the updates nothing here allocates
// or fails, so a step is applied whole or not at all.
void apply_parts(Impl& impl, const std::vector<Part>& parts, std::int64_t nonfinite) {
  const TableConfig& config = impl.config;
  detail::StepPlan plan = step_plan(impl);
  if (config.optimizer.kind == OptimizerKind::custom) {
    nonfinite += apply_custom(impl, parts, plan.rule.scalars);  // judges its own rows: the callback runs once
    record_nonfinite(impl, nonfinite);
    ++impl.step;
    return;
  }
  refuse_nonfinite_updates(impl, parts, plan);
  for (const Part& part : parts) {
    plan.row_begin = part.row_begin;
    plan.row_end = part.row_end;
    nonfinite += impl.backend->apply(impl.view(), part.grad, part.skip.as<std::uint8_t>(), plan);
  }
  record_nonfinite(impl, nonfinite);
  ++impl.step;
}

// A frozen table takes no step (said once); the inputs were still checked.
bool frozen(Impl& impl) {
  if (impl.config.trainable) return false;
  if (!impl.frozen_step_logged) {
    detail::logger().info("table '{}' is not trainable: train steps leave it unchanged", impl.config.name);
    impl.frozen_step_logged = true;
  }
  return true;
}

// Whether a train step may fold and apply in one backend call (FusedStep::fold_and_apply), the
// folded rows never handed out: the backend fuses rows of this dim, the table trains, the
// optimizer is built in and sparse (a lazy: false step moves every row), and non-finite rows are applied
// or skipped ("error" must name the row before anything changes).
bool fusable(const Impl& impl) {
  const TableConfig& config = impl.config;
  return config.trainable && config.optimizer.kind != OptimizerKind::custom && !detail::updates_every_row(config) &&
         config.nonfinite_gradients != NonFiniteGradients::error && impl.backend->fused_step() != nullptr &&
         impl.backend->fused_step()->fuses(config.output_dim);
}

// Takes a fusable step by `run(skip_nonfinite, report)` (a fused backend call returning the rows
// it skipped) and counts it, with its ids checked as the backend wants (detail::IdsCheck). Returns
// false, with the table unchanged, when the device runs out of memory for it or reports an
// out-of-range id: the unfused path then takes the step (in chunks if need be) and judges the ids.
template <class Run>
bool take_fused_step(Impl& impl, const IndexTensor& indices, detail::ZeroFilled* filled, Run&& run) {
  detail::IdsCheck check(impl, indices);
  std::int64_t skipped = 0;
  try {
    skipped = run(impl.config.nonfinite_gradients == NonFiniteGradients::skip, check.report());
  } catch (const Error& e) {
    if (e.status() != Status::out_of_memory) throw;
    detail::logger().warn("table '{}': {}; taking the step unfused", impl.config.name, e.what());
    return false;
  }
  if (check.report() != nullptr && check.report()->out_of_range > 0) return false;
  *filled = check.result();
  record_nonfinite(impl, skipped);
  ++impl.step;
  return true;
}

SparseGrad to_host(const Impl& impl, const Part& part) {
  SparseGrad grad;
  grad.dim = impl.config.output_dim;
  grad.unique_ids.resize(static_cast<std::size_t>(part.grad.count));
  grad.rows.resize(static_cast<std::size_t>(part.grad.count * grad.dim));
  impl.backend->copy_to_host(grad.unique_ids.data(), part.grad.ids.as<void>(), grad.unique_ids.size() * 8);
  impl.backend->copy_to_host(grad.rows.data(), part.grad.rows.as<void>(), grad.rows.size() * 4);
  return grad;
}

SparseGrad concatenate(const Impl& impl, const std::vector<Part>& parts) {
  SparseGrad all;
  all.dim = impl.config.output_dim;
  for (const Part& part : parts) {
    SparseGrad host = to_host(impl, part);
    all.unique_ids.insert(all.unique_ids.end(), host.unique_ids.begin(), host.unique_ids.end());
    all.rows.insert(all.rows.end(), host.rows.begin(), host.rows.end());
  }
  return all;
}

void check_lookup_grad(const Impl& impl, const IndexTensor& indices, std::span<const float> grad_out) {
  detail::expect_floats("grad_out", grad_out.size(), indices, impl.config.output_dim);
}

// The folded parts of a lookup batch whose gradient has been checked (check_lookup_grad).
std::vector<Part> lookup_parts(Impl& impl, const IndexTensor& indices, std::span<const float> grad_out,
                               std::int64_t* nonfinite, detail::ZeroFilled* filled) {
  detail::IdsCheck check(impl, indices);
  std::vector<Part> parts = detail::with_ids(indices, [&](const auto* ids) {
    return fold_lookup(impl, ids, indices.size(), grad_out.data(), indices.type(), nonfinite, check);
  });
  *filled = check.result();
  return parts;
}

// The number of bags of a pooled batch, its arguments and gradient checked.
std::int64_t check_pooled_grad(const Impl& impl, const IndexTensor& indices, std::span<const std::int64_t> offsets,
                               PoolingMode mode, std::span<const float> per_sample_weights,
                               std::span<const float> grad_bags) {
  std::vector<std::int64_t> offsets_copy;  // offsets in device memory are checked from a host copy
  const std::int64_t bags = detail::check_pooled_arguments(
      indices, detail::on_host(impl.call_memory(), offsets, offsets_copy), mode, per_sample_weights);
  detail::expect_floats("grad_bags", grad_bags.size(), bags, impl.config.output_dim, "bags");
  return bags;
}

// The folded parts of a pooled batch of `bags` bags, checked by check_pooled_grad.
std::vector<Part> pooled_parts(Impl& impl, const IndexTensor& indices, std::span<const std::int64_t> offsets,
                               std::int64_t bags, PoolingMode mode, std::span<const float> per_sample_weights,
                               std::span<const float> grad_bags, std::int64_t* nonfinite, detail::ZeroFilled* filled) {
  detail::IdsCheck check(impl, indices);
  std::vector<Part> parts =
      fold_pooled(impl, indices, offsets, bags, mode, per_sample_weights, grad_bags, nonfinite, check);
  *filled = check.result();
  return parts;
}

void check_sparse_grad(const TableConfig& config, const SparseGrad& grad) {
  EMBEDKIT_EXPECTS(grad.dim == config.output_dim, Status::shape_mismatch,
                   "sparse gradient dim {} does not match output_dim {}", grad.dim, config.output_dim);
  const auto unique = static_cast<std::int64_t>(grad.unique_ids.size());
  detail::expect_floats("sparse gradient rows", grad.rows.size(), unique, grad.dim, "unique ids");
  for (std::int64_t u = 0; u < unique; ++u) {
    const std::int64_t id = grad.unique_ids[u];
    EMBEDKIT_EXPECTS(id >= 0 && id < config.input_dim, Status::out_of_range, "unique_ids[{}] = {} is not in [0, {})", u,
                     id, config.input_dim);
    EMBEDKIT_EXPECTS(u == 0 || id > grad.unique_ids[u - 1], Status::invalid_argument,
                     "unique_ids[{}] = {} does not exceed unique_ids[{}] = {}; ids must be strictly increasing", u, id,
                     u - 1, grad.unique_ids[u - 1]);
  }
}

}  // namespace

SparseGrad EmbeddingTable::sparse_grad(const IndexTensor& indices, std::span<const float> grad_out) const {
  std::shared_lock lock(impl_->mutex);
  check_lookup_grad(*impl_, indices, grad_out);
  const detail::CallStream on(*impl_, {{indices.data(), detail::index_bytes(indices)},
                                       {grad_out.data(), grad_out.size_bytes()}});
  std::int64_t nonfinite = 0;
  detail::ZeroFilled filled;
  SparseGrad grad = concatenate(*impl_, lookup_parts(*impl_, indices, grad_out, &nonfinite, &filled));
  detail::record_zero_filled(*impl_, filled);
  return grad;
}

SparseGrad EmbeddingTable::sparse_grad_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                              PoolingMode mode, std::span<const float> per_sample_weights,
                                              std::span<const float> grad_bags) const {
  std::shared_lock lock(impl_->mutex);
  const std::int64_t bags = check_pooled_grad(*impl_, indices, offsets, mode, per_sample_weights, grad_bags);
  const detail::CallStream on(*impl_, {{indices.data(), detail::index_bytes(indices)},
                                       {offsets.data(), offsets.size_bytes()},
                                       {per_sample_weights.data(), per_sample_weights.size_bytes()},
                                       {grad_bags.data(), grad_bags.size_bytes()}});
  std::int64_t nonfinite = 0;
  detail::ZeroFilled filled;
  SparseGrad grad = concatenate(*impl_, pooled_parts(*impl_, indices, offsets, bags, mode, per_sample_weights,
                                                     grad_bags, &nonfinite, &filled));
  detail::record_zero_filled(*impl_, filled);
  return grad;
}

void EmbeddingTable::apply(const SparseGrad& grad) {
  check_sparse_grad(impl_->config, grad);
  std::unique_lock lock(impl_->mutex);
  Impl& impl = *impl_;
  if (frozen(impl)) return;
  detail::Backend& backend = *impl.backend;
  std::vector<Part> parts(1);
  Part& part = parts.front();
  part.grad.count = static_cast<std::int64_t>(grad.unique_ids.size());
  part.grad.ids = backend.allocate(grad.unique_ids.size() * 8, "sparse gradient ids");
  part.grad.rows = backend.allocate(grad.rows.size() * 4, "sparse gradient rows");
  backend.copy_from_host(part.grad.ids.as<void>(), grad.unique_ids.data(), grad.unique_ids.size() * 8);
  backend.copy_from_host(part.grad.rows.as<void>(), grad.rows.data(), grad.rows.size() * 4);
  part.row_end = impl.config.input_dim;
  // padding_idx never receives gradient, even from a gradient built by hand.
  std::vector<std::uint8_t> initial(grad.unique_ids.size(), 0);
  for (std::size_t u = 0; u < initial.size(); ++u) initial[u] = grad.unique_ids[u] == impl.config.padding_idx ? 1 : 0;
  const std::int64_t nonfinite = flag_rows(impl, part, initial);
  apply_parts(impl, parts, nonfinite);
}

void EmbeddingTable::train_step(const IndexTensor& indices, std::span<const float> grad_out) {
  std::unique_lock lock(impl_->mutex);
  Impl& impl = *impl_;
  const detail::NamedBytes inputs[] = {{"indices", indices.data(), detail::index_bytes(indices)},
                                       {"grad_out", grad_out.data(), grad_out.size_bytes()}};
  detail::check_inputs_apart_from_table(impl, inputs);
  check_lookup_grad(impl, indices, grad_out);
  const detail::CallStream on(impl, {{indices.data(), detail::index_bytes(indices)},
                                     {grad_out.data(), grad_out.size_bytes()}});
  detail::ZeroFilled filled;
  const bool fused =
      fusable(impl) && detail::with_ids(indices, [&](const auto* ids) {
        return take_fused_step(impl, indices, &filled, [&](bool skip_nonfinite, detail::IdCheck* report) {
          return with_staged_lookup(impl, ids, indices.size(), grad_out.data(), indices.type(),
                                    [&](const detail::DeviceIds& device_ids, const float* device_grad) {
                                      return impl.backend->fused_step()->fold_and_apply(impl.view(), device_ids,
                                                                                        device_grad, step_plan(impl),
                                                                                        skip_nonfinite, report);
                                    });
        });
      });
  if (!fused) {
    std::int64_t nonfinite = 0;
    const std::vector<Part> parts = lookup_parts(impl, indices, grad_out, &nonfinite, &filled);
    if (!frozen(impl)) apply_parts(impl, parts, nonfinite);
  }
  detail::record_zero_filled(impl, filled);
}

void EmbeddingTable::train_step_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                       PoolingMode mode, std::span<const float> per_sample_weights,
                                       std::span<const float> grad_bags) {
  std::unique_lock lock(impl_->mutex);
  Impl& impl = *impl_;
  const detail::NamedBytes inputs[] = {{"indices", indices.data(), detail::index_bytes(indices)},
                                       {"offsets", offsets.data(), offsets.size_bytes()},
                                       {"per_sample_weights", per_sample_weights.data(),
                                        per_sample_weights.size_bytes()},
                                       {"grad_bags", grad_bags.data(), grad_bags.size_bytes()}};
  detail::check_inputs_apart_from_table(impl, inputs);
  const std::int64_t bags = check_pooled_grad(impl, indices, offsets, mode, per_sample_weights, grad_bags);
  const detail::CallStream on(impl, {{indices.data(), detail::index_bytes(indices)},
                                     {offsets.data(), offsets.size_bytes()},
                                     {per_sample_weights.data(), per_sample_weights.size_bytes()},
                                     {grad_bags.data(), grad_bags.size_bytes()}});
  detail::ZeroFilled filled;
  const bool fused =
      fusable(impl) && take_fused_step(impl, indices, &filled, [&](bool skip_nonfinite, detail::IdCheck* report) {
        return with_staged_pooled(impl, indices, offsets, per_sample_weights, grad_bags, [&](const StagedPooled& in) {
          return impl.backend->fused_step()->fold_pooled_and_apply(impl.view(), in.ids, in.offsets, bags,
                                                                   in.sample_weights, mode, in.grad_bags,
                                                                   step_plan(impl), skip_nonfinite, report);
        });
      });
  if (!fused) {
    std::int64_t nonfinite = 0;
    const std::vector<Part> parts =
        pooled_parts(impl, indices, offsets, bags, mode, per_sample_weights, grad_bags, &nonfinite, &filled);
    if (!frozen(impl)) apply_parts(impl, parts, nonfinite);
  }
  detail::record_zero_filled(impl, filled);
}

OptimizerConfig EmbeddingTable::optimizer() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->config.optimizer;
}

void EmbeddingTable::set_learning_rate(double learning_rate) {
  std::unique_lock lock(impl_->mutex);
  OptimizerConfig changed = impl_->config.optimizer;
  changed.learning_rate = learning_rate;
  changed.validate();
  impl_->config.optimizer.learning_rate = learning_rate;
}

double EmbeddingTable::regularization_loss() const {
  if (!impl_->config.embeddings_regularizer) return 0.0;
  std::shared_lock lock(impl_->mutex);
  return impl_->backend->penalty(impl_->view().weights, static_cast<std::int64_t>(impl_->weight_count()),
                                 impl_->config.embeddings_regularizer->l1, impl_->config.embeddings_regularizer->l2);
}

void EmbeddingTable::apply_constraints() {
  std::unique_lock lock(impl_->mutex);
  impl_->backend->constrain_all(impl_->view(), impl_->config.embeddings_constraint);
}

std::int64_t EmbeddingTable::nonfinite_gradient_rows() const noexcept { return impl_->nonfinite_rows.load(); }

namespace detail {

void train_tables(std::span<const TableStep> steps) {
  // A step prepared by the checks: the folded parts of a table that is not fused (its checks need
  // the fold), the ids it zero-filled.
  struct Prepared {
    std::vector<Part> parts;
    bool folded = false;
    std::int64_t bags = 0;
    std::int64_t nonfinite = 0;
    ZeroFilled filled;
  };
  std::vector<std::unique_lock<WriterPriorityMutex>> locks;
  locks.reserve(steps.size());
  for (const TableStep& step : steps) locks.emplace_back(TableAccess::impl(*step.table).mutex);
  std::vector<Prepared> prepared(steps.size());
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const TableStep& step = steps[k];
    Impl& impl = TableAccess::impl(*step.table);
    EMBEDKIT_EXPECTS(impl.config.optimizer.kind != OptimizerKind::custom, Status::unsupported,
                     "table '{}': a custom optimizer cannot step with other tables", impl.config.name);
    const NamedBytes inputs[] = {{"indices", step.indices.data(), index_bytes(step.indices)},
                                 {"offsets", step.offsets.data(), step.offsets.size_bytes()},
                                 {"per_sample_weights", step.per_sample_weights.data(),
                                  step.per_sample_weights.size_bytes()},
                                 {"grad", step.grad.data(), step.grad.size_bytes()}};
    check_inputs_apart_from_table(impl, inputs);
    Prepared& ready = prepared[k];
    if (step.pooled) {
      ready.bags = check_pooled_grad(impl, step.indices, step.offsets, step.mode, step.per_sample_weights, step.grad);
    } else {
      check_lookup_grad(impl, step.indices, step.grad);
    }
    if (impl.config.trainable) step_plan(impl);  // refuses a step past the last
    if (fusable(impl)) continue;                 // its checks are the ids', which its step makes first
    ready.parts = step.pooled ? pooled_parts(impl, step.indices, step.offsets, ready.bags, step.mode,
                                             step.per_sample_weights, step.grad, &ready.nonfinite, &ready.filled)
                              : lookup_parts(impl, step.indices, step.grad, &ready.nonfinite, &ready.filled);
    ready.folded = true;
    if (impl.config.trainable) refuse_nonfinite_updates(impl, ready.parts, step_plan(impl));
  }
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const TableStep& step = steps[k];
    Impl& impl = TableAccess::impl(*step.table);
    Prepared& ready = prepared[k];
    const bool fused =
        !ready.folded && take_fused_step(impl, step.indices, &ready.filled, [&](bool skip_nonfinite, IdCheck* report) {
          if (step.pooled) {
            return with_staged_pooled(
                impl, step.indices, step.offsets, step.per_sample_weights, step.grad, [&](const StagedPooled& in) {
                  return impl.backend->fused_step()->fold_pooled_and_apply(impl.view(), in.ids, in.offsets, ready.bags,
                                                                           in.sample_weights, step.mode, in.grad_bags,
                                                                           step_plan(impl), skip_nonfinite, report);
                });
          }
          return with_ids(step.indices, [&](const auto* ids) {
            return with_staged_lookup(impl, ids, step.indices.size(), step.grad.data(), step.indices.type(),
                                      [&](const DeviceIds& device_ids, const float* device_grad) {
                                        return impl.backend->fused_step()->fold_and_apply(impl.view(), device_ids,
                                                                                          device_grad, step_plan(impl),
                                                                                          skip_nonfinite, report);
                                      });
          });
        });
    if (!fused && !ready.folded) {  // the fused step fell back: no "error" policy here, so nothing throws
      ready.parts = step.pooled ? pooled_parts(impl, step.indices, step.offsets, ready.bags, step.mode,
                                               step.per_sample_weights, step.grad, &ready.nonfinite, &ready.filled)
                                : lookup_parts(impl, step.indices, step.grad, &ready.nonfinite, &ready.filled);
      ready.folded = true;
    }
    if (ready.folded && !frozen(impl)) apply_parts(impl, ready.parts, ready.nonfinite);
    record_zero_filled(impl, ready.filled);
  }
}

}  // namespace detail
}  // namespace embedkit
