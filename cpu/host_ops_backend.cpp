#include "host_ops_backend.hpp"

#include <embedkit/detail/penalty.hpp>
#include <embedkit/detail/pooled_batch.hpp>

#include "fill.hpp"
#include "gather.hpp"
#include "index_scan.hpp"
#include "optimizer_apply.hpp"
#include "parallel.hpp"
#include "pooled.hpp"
#include "pooled_backward.hpp"
#include "renorm.hpp"
#include "segment_reduce.hpp"
#include "segments.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace embedkit::detail {
namespace {

std::size_t floats(std::int64_t count) { return static_cast<std::size_t>(count) * sizeof(float); }

// What a device reports of the out-of-range ids it met, here from the CPU's scan of them.
template <class Index>
void report_out_of_range(const Index* ids, std::int64_t count, std::int64_t input_dim, IdCheck* check) {
  if (check != nullptr) *check = cpu::scan_ids(ids, count, input_dim);
}

// values[positions[k]] for every sorted slot k of `segments`. The fold reads a slot's bag and
// scale once per slot; gathered here in one pass of independent loads, the fold reads them in
// order instead of chasing each position into a batch-sized array (a cache miss per slot).
template <class T>
RecycledVector<T> by_slot(const cpu::Segments& segments, const RecycledVector<T>& values) {
  const auto slots = static_cast<std::int64_t>(segments.positions.size());
  RecycledVector<T> gathered(segments.positions.size());
#pragma omp parallel for schedule(static) if (slots >= cpu::kParallelMinIds)
  for (std::int64_t k = 0; k < slots; ++k) gathered[k] = values[segments.positions[k]];
  return gathered;
}

// The lookup gradient `grad_out` (one row per position) folded by `segments`, each row handed to
// `finish` as cpu::reduce_segments does (into `rows`, or a thread's scratch row when NULL).
template <class Finish>
void fold_lookup_rows(const cpu::Segments& segments, std::int64_t dim, const float* grad_out, float* rows,
                      const Finish& finish) {
  cpu::reduce_segments(
      segments, dim,
      [&segments, grad_out, dim](std::int64_t k, float* acc, bool first) {
        const float* row = grad_out + segments.positions[k] * dim;
        if (first) {
          std::copy(row, row + dim, acc);
        } else {
          for (std::int64_t c = 0; c < dim; ++c) acc[c] += row[c];
        }
      },
      [&segments, grad_out, dim](std::int64_t k) {
        cpu::prefetch_row(grad_out + segments.positions[k] * dim, floats(dim));
      },
      rows, finish);
}

// Whether an entry's share of its bag's gradient depends on the bag alone (no per-sample weights,
// not a mode that picks entries): then the fold groups bags instead of positions (cpu::group_bags).
template <class Index>
bool shares_follow_bags(const PooledBatch<Index>& batch) {
  return !picks_entry(batch.mode) && batch.sample_weights == nullptr;
}

// The `count` entries of a pooled batch grouped by id for fold_pooled_rows: by bag where the
// shares follow the bags, by position otherwise.
template <class Index>
cpu::Segments group_pooled(const TableView& table, const PooledBatch<Index>& batch, std::int64_t count) {
  if (shares_follow_bags(batch)) {
    return cpu::group_bags(batch.ids, batch.offsets, batch.bags, table.input_dim, batch.padding);
  }
  return cpu::group_positions(batch.ids, count, table.input_dim, batch.padding);
}

// The pooled gradient `grad_bags` (one row per bag) folded by `segments` (from group_pooled) onto
// the ids of the `count` entries of `batch`, each entry receiving its share (pooled_bag_scales by
// bag, pooled_entry_scales by position, or the argmax's columns for max), each row handed to
// `finish` as cpu::reduce_segments does.
template <class Index, class Finish>
void fold_pooled_rows(const TableView& table, const PooledBatch<Index>& batch, std::int64_t count,
                      const cpu::Segments& segments, const float* grad_bags, float* rows, const Finish& finish) {
  const std::int64_t dim = table.dim, bags = batch.bags;
  const std::int64_t* offsets = batch.offsets;
  const auto fold_scaled = [&](const std::int64_t* slot_bag, const auto& scale_of) {
    cpu::reduce_segments(
        segments, dim,
        [&](std::int64_t k, float* acc, bool first) {
          const float* row = grad_bags + slot_bag[k] * dim;
          const float scale = scale_of(k);
          if (first) {
            for (std::int64_t c = 0; c < dim; ++c) acc[c] = row[c] * scale;
          } else {
            for (std::int64_t c = 0; c < dim; ++c) acc[c] += row[c] * scale;
          }
        },
        [&](std::int64_t k) { cpu::prefetch_row(grad_bags + slot_bag[k] * dim, floats(dim)); }, rows, finish);
  };
  if (shares_follow_bags(batch)) {
    // The slots hold bags; the same share for every counted entry of a bag.
    RecycledVector<float> bag_scales(static_cast<std::size_t>(bags));
    cpu::pooled_bag_scales(batch, bag_scales.data());
    const std::int64_t* slot_bag = segments.positions.data();
    fold_scaled(slot_bag, [&](std::int64_t k) { return bag_scales[slot_bag[k]]; });
    return;
  }
  RecycledVector<std::int64_t> bag_of(static_cast<std::size_t>(count));
  if (picks_entry(batch.mode)) {
    RecycledVector<std::int64_t> argmax(static_cast<std::size_t>(bags * dim));
    with_dtype(table.weights.type, [&](auto tag) {
      cpu::pooled_argmax(table.weights.as<const decltype(tag)>(), table.input_dim, dim, batch, argmax.data());
    });
    for (std::int64_t b = 0; b < bags; ++b) std::fill(bag_of.begin() + offsets[b], bag_of.begin() + offsets[b + 1], b);
    const RecycledVector<std::int64_t> slot_bag = by_slot(segments, bag_of);
    cpu::reduce_segments(
        segments, dim,
        [&](std::int64_t k, float* acc, bool first) {
          const std::int64_t at = slot_bag[k] * dim, p = segments.positions[k];
          for (std::int64_t c = 0; c < dim; ++c) {
            const float v = argmax[at + c] == p ? grad_bags[at + c] : 0.0f;
            acc[c] = first ? v : acc[c] + v;
          }
        },
        [&](std::int64_t k) { cpu::prefetch_row(grad_bags + slot_bag[k] * dim, floats(dim)); }, rows, finish);
    return;
  }
  RecycledVector<float> scales(static_cast<std::size_t>(count));
  cpu::pooled_entry_scales(batch, scales.data(), bag_of.data());
  const RecycledVector<std::int64_t> slot_bag = by_slot(segments, bag_of);
  const RecycledVector<float> slot_scale = by_slot(segments, scales);
  fold_scaled(slot_bag.data(), [&](std::int64_t k) { return slot_scale[k]; });
}

// What the optimizer step writes and what it does there: float32 rows in place, narrower ones
// through update_row's widened copy and rounded write-back.
cpu::RowStep row_step(const TableView& table, const StepPlan& plan) {
  cpu::RowStep step{nullptr, table.state.slot0, table.state.slot1, table.dim, plan.rule};
  if (table.weights.type == StorageType::float32) {
    step.weights = table.weights.as<float>();
  } else {
    step.narrow_rows = table.weights.data;
    step.narrow_type = table.weights.type;
  }
  return step;
}

// Bytes of `count` stored elements of `rows`.
std::size_t stored_bytes(const StoredRows& rows, std::int64_t count) {
  return static_cast<std::size_t>(count) * storage_bytes(rows.type);
}

// The fused step's end of each folded row: what mark_nonfinite (when skipping) and apply do to
// it, at once, while the row is in the cache. Rows are disjoint, so the order in which threads
// finish them does not change any bit.
class FusedUpdate {
 public:
  FusedUpdate(const TableView& table, StepPlan plan, const cpu::Segments& segments, bool skip_nonfinite)
      : segments_(segments), skip_nonfinite_(skip_nonfinite), update_(row_step(table, plan)) {
    if (plan.dense) throw Error(Status::internal, "a fused step takes a sparse plan");
  }

  void finish(std::int64_t u, const float* row) {
    // The rows a few segments on are this thread's next ones in most cases: ask for their state.
    if (u + cpu::kPrefetchDistance < segments_.size()) {
      cpu::prefetch_update_state(update_, segments_.unique_ids[u + cpu::kPrefetchDistance]);
    }
    if (skip_nonfinite_ && !std::all_of(row, row + update_.dim, [](float v) { return std::isfinite(v); })) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!cpu::update_row(update_, segments_.unique_ids[u], row)) skipped_.fetch_add(1, std::memory_order_relaxed);
  }

  std::int64_t skipped() const { return skipped_.load(); }

 private:
  const cpu::Segments& segments_;
  const bool skip_nonfinite_;
  const cpu::RowStep update_;
  std::atomic<std::int64_t> skipped_{0};
};

}  // namespace

void HostOpsBackend::expect_table(const TableView& table) const {
  expect_device_memory(table.weights.data, stored_bytes(table.weights, table.input_dim * table.dim), "table weights");
}

FoldedGrad HostOpsBackend::folded(const cpu::Segments& segments, std::int64_t dim) {
  FoldedGrad grad;
  grad.count = segments.size();
  grad.ids = allocate(segments.unique_ids.size() * sizeof(std::int64_t), "sparse gradient ids");
  grad.rows = allocate(floats(grad.count * dim), "sparse gradient rows");
  if (grad.count > 0) {
    std::memcpy(grad.ids.as<void>(), segments.unique_ids.data(), segments.unique_ids.size() * sizeof(std::int64_t));
  }
  return grad;
}

void HostOpsBackend::fill_initial(const StoredRows& rows_of, std::int64_t rows, std::int64_t dim,
                                  const InitSampler& sampler, std::uint64_t seed) {
  expect_device_memory(rows_of.data, stored_bytes(rows_of, rows * dim), "weights to initialise");
  with_dtype(rows_of.type, [&](auto tag) { cpu::fill_initial(rows_of.as<decltype(tag)>(), rows, dim, sampler, seed); });
}

void HostOpsBackend::fill(float* data, std::int64_t count, float value) {
  expect_device_memory(data, floats(count), "buffer to fill");
  std::fill(data, data + count, value);
}

void HostOpsBackend::gather(const TableView& table, const DeviceIds& ids, float* out, IdCheck* check) {
  expect_table(table);
  expect_device_memory(ids.data, id_bytes(ids), "lookup ids");
  expect_device_memory(out, floats(ids.count * table.dim), "lookup output");
  with_ids(ids, [&](const auto* typed) {
    with_dtype(table.weights.type, [&](auto tag) {
      cpu::gather_rows(table.weights.as<const decltype(tag)>(), table.input_dim, table.dim, typed, ids.count,
                       table.padding, out);
    });
    report_out_of_range(typed, ids.count, table.input_dim, check);
  });
}

void HostOpsBackend::pooled(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                            std::int64_t bags, const float* sample_weights, PoolingMode mode, float* out,
                            IdCheck* check) {
  expect_table(table);
  expect_device_memory(ids.data, id_bytes(ids), "pooled ids");
  expect_device_memory(offsets, static_cast<std::size_t>(bags + 1) * 8, "pooled offsets");
  if (sample_weights != nullptr) expect_device_memory(sample_weights, floats(ids.count), "per-sample weights");
  expect_device_memory(out, floats(bags * table.dim), "pooled output");
  with_ids(ids, [&](const auto* typed) {
    with_dtype(table.weights.type, [&](auto tag) {
      cpu::pooled_lookup(table.weights.as<const decltype(tag)>(), table.input_dim, table.dim,
                         pooled_batch(typed, offsets, bags, sample_weights, mode, table.padding), out);
    });
    report_out_of_range(typed, ids.count, table.input_dim, check);
  });
}

FoldedGrad HostOpsBackend::fold_lookup_grad(const TableView& table, const DeviceIds& ids, const float* grad_out,
                                            IdCheck* check) {
  expect_lookup_grad(table, ids, grad_out);
  return with_ids(ids, [&](const auto* typed) {
    report_out_of_range(typed, ids.count, table.input_dim, check);
    const cpu::Segments segments = cpu::group_positions(typed, ids.count, table.input_dim, table.padding);
    FoldedGrad grad = folded(segments, table.dim);
    fold_lookup_rows(segments, table.dim, grad_out, grad.rows.as<float>(), [](std::int64_t, const float*) {});
    return grad;
  });
}

FoldedGrad HostOpsBackend::fold_pooled_grad(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                                            std::int64_t bags, const float* sample_weights, PoolingMode mode,
                                            const float* grad_bags, IdCheck* check) {
  expect_pooled_grad(table, ids, offsets, bags, sample_weights, grad_bags);
  return with_ids(ids, [&](const auto* typed) {
    report_out_of_range(typed, ids.count, table.input_dim, check);
    const auto batch = pooled_batch(typed, offsets, bags, sample_weights, mode, table.padding);
    const cpu::Segments segments = group_pooled(table, batch, ids.count);
    FoldedGrad grad = folded(segments, table.dim);
    fold_pooled_rows(table, batch, ids.count, segments, grad_bags, grad.rows.as<float>(),
                     [](std::int64_t, const float*) {});
    return grad;
  });
}

std::int64_t HostOpsBackend::fold_and_apply(const TableView& table, const DeviceIds& ids, const float* grad_rows,
                                            StepPlan plan, bool skip_nonfinite, IdCheck* check) {
  expect_table(table);
  expect_lookup_grad(table, ids, grad_rows);
  return with_ids(ids, [&](const auto* typed) -> std::int64_t {
    report_out_of_range(typed, ids.count, table.input_dim, check);
    // The contract's report; CpuBackend's tables check their ids on the host first (no check).
    if (check != nullptr && check->out_of_range > 0) return 0;  // reported; nothing applied
    const cpu::Segments segments = cpu::group_positions(typed, ids.count, table.input_dim, table.padding);
    FusedUpdate fused(table, plan, segments, skip_nonfinite);
    fold_lookup_rows(segments, table.dim, grad_rows, nullptr,
                     [&fused](std::int64_t u, const float* row) { fused.finish(u, row); });
    return fused.skipped();
  });
}

std::int64_t HostOpsBackend::fold_pooled_and_apply(const TableView& table, const DeviceIds& ids,
                                                   const std::int64_t* offsets, std::int64_t bags,
                                                   const float* sample_weights, PoolingMode mode,
                                                   const float* grad_bags, StepPlan plan, bool skip_nonfinite,
                                                   IdCheck* check) {
  expect_pooled_grad(table, ids, offsets, bags, sample_weights, grad_bags);
  return with_ids(ids, [&](const auto* typed) -> std::int64_t {
    report_out_of_range(typed, ids.count, table.input_dim, check);
    if (check != nullptr && check->out_of_range > 0) return 0;
    const auto batch = pooled_batch(typed, offsets, bags, sample_weights, mode, table.padding);
    const cpu::Segments segments = group_pooled(table, batch, ids.count);
    FusedUpdate fused(table, plan, segments, skip_nonfinite);
    fold_pooled_rows(table, batch, ids.count, segments, grad_bags, nullptr,
                     [&fused](std::int64_t u, const float* row) { fused.finish(u, row); });
    return fused.skipped();
  });
}

void HostOpsBackend::expect_lookup_grad(const TableView& table, const DeviceIds& ids, const float* grad_out) const {
  expect_device_memory(ids.data, id_bytes(ids), "gradient ids");
  expect_device_memory(grad_out, floats(ids.count * table.dim), "upstream gradient");
}

void HostOpsBackend::expect_pooled_grad(const TableView& table, const DeviceIds& ids, const std::int64_t* offsets,
                                        std::int64_t bags, const float* sample_weights, const float* grad_bags) const {
  expect_table(table);
  expect_device_memory(ids.data, id_bytes(ids), "gradient ids");
  expect_device_memory(offsets, static_cast<std::size_t>(bags + 1) * 8, "gradient offsets");
  expect_device_memory(grad_bags, floats(bags * table.dim), "upstream bag gradient");
  if (sample_weights != nullptr) expect_device_memory(sample_weights, floats(ids.count), "per-sample weights");
}

std::int64_t HostOpsBackend::mark_nonfinite(const FoldedGrad& grad, std::int64_t dim, std::uint8_t* skip) {
  expect_device_memory(skip, static_cast<std::size_t>(grad.count), "non-finite flags");
  const float* rows = grad.rows.as<const float>();
  std::int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (grad.count * dim >= cpu::kParallelMinFloats)
  for (std::int64_t u = 0; u < grad.count; ++u) {
    if (skip[u] != 0) continue;  // already left out (padding): not counted, never refused
    const float* row = rows + u * dim;
    const bool finite = std::all_of(row, row + dim, [](float v) { return std::isfinite(v); });
    skip[u] = finite ? std::uint8_t{0} : std::uint8_t{1};
    bad += finite ? 0 : 1;
  }
  return bad;
}

std::int64_t HostOpsBackend::apply(const TableView& table, const FoldedGrad& grad, const std::uint8_t* skip,
                                   StepPlan plan) {
  expect_table(table);
  expect_device_memory(skip, static_cast<std::size_t>(grad.count), "skip flags");
  const cpu::RowStep update = row_step(table, plan);
  const auto* ids = grad.ids.as<const std::int64_t>();
  const auto* rows = grad.rows.as<const float>();
  if (plan.dense) {
    return cpu::update_every_row(update, plan.row_begin, plan.row_end, ids, rows, skip, grad.count, table.padding);
  }
  return cpu::update_rows(update, ids, rows, skip, grad.count);
}

std::int64_t HostOpsBackend::first_rejected_update(const TableView& table, const FoldedGrad& grad,
                                                   const std::uint8_t* skip, StepPlan plan) {
  expect_table(table);
  expect_device_memory(skip, static_cast<std::size_t>(grad.count), "skip flags");
  return cpu::first_rejected_update(row_step(table, plan), plan.dense, plan.row_begin, plan.row_end,
                                    grad.ids.as<const std::int64_t>(), grad.rows.as<const float>(), skip, grad.count,
                                    table.padding);
}

void HostOpsBackend::renorm_rows(const TableView& table, const DeviceIds& ids, double max_norm, double norm_type) {
  expect_table(table);
  expect_device_memory(ids.data, id_bytes(ids), "renorm ids");
  // Sorted distinct ids, out-of-range ones left out (padding kept, as torch renorms it too).
  const cpu::Segments distinct = with_ids(ids, [&](const auto* typed) {
    return cpu::group_positions(typed, ids.count, table.input_dim, Padding{});
  });
  with_dtype(table.weights.type, [&](auto tag) {
    cpu::renorm_rows(table.weights.as<decltype(tag)>(), table.dim, distinct.unique_ids.data(), distinct.size(),
                     renorm_rule(max_norm, norm_type));
  });
}

void HostOpsBackend::constrain_all(const TableView& table, const Constraint& constraint) {
  expect_table(table);
  with_dtype(table.weights.type, [&](auto tag) {
    using T = decltype(tag);
    T* weights = table.weights.as<T>();  // outside the loop: it may throw
    if constexpr (std::is_same_v<T, float>) {
#pragma omp parallel for schedule(static) if (table.input_dim * table.dim >= cpu::kParallelMinFloats)
      for (std::int64_t id = 0; id < table.input_dim; ++id)
        cpu::constrain_row(weights + id * table.dim, table.dim, constraint);
    } else {
      // In float32, each row rounded back to nearest.
#pragma omp parallel if (table.input_dim * table.dim >= cpu::kParallelMinFloats)
      {
        std::vector<float> wide(static_cast<std::size_t>(table.dim));
#pragma omp for schedule(static)
        for (std::int64_t id = 0; id < table.input_dim; ++id) {
          T* row = weights + id * table.dim;
          for (std::int64_t c = 0; c < table.dim; ++c) wide[c] = widen(row[c]);
          cpu::constrain_row(wide.data(), table.dim, constraint);
          for (std::int64_t c = 0; c < table.dim; ++c) row[c] = narrow_nearest<T>(wide[c]);
        }
      }
    }
  });
}

double HostOpsBackend::penalty(const StoredRows& rows, std::int64_t count, double l1, double l2) {
  expect_device_memory(rows.data, stored_bytes(rows, count), "weights");
  // Fixed chunks summed in order: the same double on any thread count, and the CUDA kernel's.
  const std::int64_t chunks = penalty_chunks(count);
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
  with_dtype(rows.type, [&](auto tag) {
    const auto* weights = rows.as<const decltype(tag)>();
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (std::int64_t k = 0; k < chunks; ++k) partial[k] = penalty_chunk(weights, count, k, l1, l2);
  });
  double total = 0.0;
  for (const double p : partial) total += p;
  return total;
}

}  // namespace embedkit::detail
