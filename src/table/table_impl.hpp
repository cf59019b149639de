#pragma once
// The state behind EmbeddingTable, shared by the files that implement its methods.

#include <embedkit/config.hpp>
#include <embedkit/context.hpp>
#include <embedkit/cuda_stream.hpp>
#include <embedkit/placement.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include "backend/backends.hpp"
#include "backend/staging.hpp"
#include "config/optimizer_state.hpp"
#include "core/call_stream.hpp"
#include "core/expects.hpp"
#include "core/host_memory.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/memory_overlap.hpp"
#include "core/shape.hpp"
#include "core/writer_priority_mutex.hpp"
#include "placement/context_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace embedkit {
namespace detail {

/// A table's padding_idx as its operations take it: a flag and the id, never a sentinel id.
inline Padding padding_of(const TableConfig& config) {
  return {config.padding_idx.has_value(), config.padding_idx.value_or(0)};
}

}  // namespace detail

struct EmbeddingTable::Impl {
  TableConfig config;           // with the seed filled in
  PlacementDecision placement;  // decided at creation, updated by migrate()
  Context* context = nullptr;
  detail::Backend* backend = nullptr;                 // where the memory below lives
  detail::DeviceBuffer weights;                       // (input_dim, output_dim), row-major
  std::vector<detail::SlotSpec> slot_specs;           // the optimizer's state, named as Keras names it
  std::vector<detail::DeviceBuffer> slots;            // one buffer per spec
  std::unique_ptr<detail::TableResources> resources;  // the backend's per-table state, freed first
  void* cuda_stream = nullptr;                        // the caller's stream for this table's CUDA work, if set
  std::uint64_t ledger_bytes = 0;                     // what this table needs in the context's device ledger...
  std::uint64_t ledger_resident = 0;                  // ...and of that, what it holds allocated
  std::uint64_t matrix_row_first = 0;                 // a shard's rows in its whole table's matrix...
  std::uint64_t matrix_row_stride = 1;                // ...which keys stochastic rounding (RowRounding)
  std::atomic<std::int64_t> step{0};                  // written under the writer lock, read by anyone
  std::atomic<std::int64_t> out_of_range_count{0};
  std::atomic<std::int64_t> nonfinite_rows{0};  // gradient rows skipped as non-finite
  std::atomic<std::int64_t> weight_views{0};    // live WeightsViews: migrate refuses while any exists
  bool frozen_step_logged = false;              // a step on a frozen table is logged once, under the writer lock
  // The one lock of the threading model (table.hpp): every reading method holds it shared, every
  // writing method alone, so no read sees a half-written row or a half-applied step.
  mutable detail::WriterPriorityMutex mutex;

  ~Impl() {
    if (ledger_bytes > 0) context->impl().release(ledger_bytes, ledger_resident);
  }

  std::uint64_t weight_count() const {
    return static_cast<std::uint64_t>(config.input_dim) * static_cast<std::uint64_t>(config.output_dim);
  }
  /// The stream this thread's call runs on (cuda_stream.hpp): its CudaStreamScope's, else the
  /// table's; NULL: the backend's own.
  void* stream() const {
    void* scoped = detail::call_stream();
    return scoped != nullptr ? scoped : cuda_stream;
  }
  /// Where this thread's call finds its arguments: host memory, the table's memory, or the
  /// memory of the context's device.
  detail::CallMemory call_memory() const { return {*backend, context->impl().device.get(), stream()}; }
  /// The rows as the backends take them, in their storage type.
  detail::StoredRows stored() const { return {weights.as<void>(), config.dtype}; }
  /// Reads elements [first, first + count) of the rows into `out` as float32 (exact) / writes them
  /// from `values` rounded to nearest even: through a bounded host buffer when the rows are narrower.
  void read_floats(std::uint64_t first, std::uint64_t count, float* out) const;
  void write_floats(std::uint64_t first, std::uint64_t count, const float* values) const;
  detail::TableView view() const {
    detail::TableView view;
    view.weights = stored();
    view.state.slot0 = slots.size() > 0 ? slots[0].as<float>() : nullptr;
    view.state.slot1 = slots.size() > 1 ? slots[1].as<float>() : nullptr;
    view.input_dim = config.input_dim;
    view.dim = config.output_dim;
    view.padding = detail::padding_of(config);
    view.stream = stream();
    view.resources = resources.get();
    return view;
  }
  /// The view a plain lookup reads: the padding row as it is, without a padding id to zero,
  /// when padding_reads is row.
  detail::TableView lookup_view() const {
    detail::TableView plain = view();
    if (config.padding_reads == PaddingReads::row) plain.padding = {};
    return plain;
  }
  /// The memory the table owns, named for overlap errors: its weights, then each optimizer slot.
  std::vector<detail::NamedBytes> memory() const {
    std::vector<detail::NamedBytes> memory{{"the table's weights", weights.as<void>(), weights.bytes()}};
    for (std::size_t k = 0; k < slots.size(); ++k) {
      memory.push_back(
          {fmt::format("the table's optimizer state '{}'", slot_specs[k].name), slots[k].as<void>(), slots[k].bytes()});
    }
    return memory;
  }
};

namespace detail {

inline std::string out_of_range_message(const IndexTensor& indices, std::int64_t position, std::int64_t id,
                                        std::int64_t input_dim) {
  return fmt::format("indices{} = {} is not in [0, {})", format_position(indices.shape(), position), id, input_dim);
}

/// Out-of-range ids a call read as zeros under zero_fill, recorded only once the call succeeds.
struct ZeroFilled {
  std::int64_t count = 0;
  std::string first;  // the message naming the first one
};

// Rejects an out-of-range id under bounds_check error; under zero_fill returns how many there are,
// for record_zero_filled() once the call has succeeded (a failed call changes no counter).
template <class Index>
ZeroFilled check_ids(const EmbeddingTable::Impl& impl, const IndexTensor& indices, const Index* ids) {
  const TableConfig& config = impl.config;
  const IdCheck scan = host_ops().scan_ids(host_ids(ids, indices.size()), config.input_dim);
  if (scan.out_of_range == 0) return {};
  std::string message = out_of_range_message(indices, scan.first_position, scan.first_id, config.input_dim);
  EMBEDKIT_EXPECTS(config.bounds_check != BoundsCheck::error, Status::out_of_range, "{}", message);
  return {scan.out_of_range, std::move(message)};
}

/// A call's id check, made where the table's backend wants it: on the host before the operation
/// (check_ids), or by the operation itself in its own pass over the ids (BackendCapabilities::checks_ids),
/// reported to report() and judged by result() once it has run. Either way the call throws the
/// same error, before anything is written back or applied, or records the same zero-filled ids.
class IdsCheck {
 public:
  IdsCheck(const EmbeddingTable::Impl& impl, const IndexTensor& indices)
      : impl_(impl), indices_(indices), by_backend_(impl.backend->capabilities().checks_ids) {
    if (!by_backend_) check_on_host();
  }
  /// Where the operation reports, or NULL when the host has checked.
  IdCheck* report() { return by_backend_ ? &report_ : nullptr; }
  /// Checks on the host now, for a path whose operations see only part of the batch.
  void check_on_host() {
    by_backend_ = false;
    filled_ = with_ids(indices_, [&](const auto* ids) {
      using Index = std::remove_cv_t<std::remove_pointer_t<decltype(ids)>>;
      std::vector<Index> copy;  // ids in device memory are read from a copy
      const auto count = static_cast<std::size_t>(indices_.size());
      return check_ids(impl_, indices_, on_host(impl_.call_memory(), std::span<const Index>(ids, count), copy).data());
    });
  }
  /// The zero-filled ids to record; throws Error(out_of_range) as check_ids does.
  ZeroFilled result() {
    if (by_backend_ && report_.out_of_range > 0) {
      std::string message =
          out_of_range_message(indices_, report_.first_position, report_.first_id, impl_.config.input_dim);
      EMBEDKIT_EXPECTS(impl_.config.bounds_check != BoundsCheck::error, Status::out_of_range, "{}", message);
      filled_ = {report_.out_of_range, std::move(message)};
    }
    return filled_;
  }

 private:
  const EmbeddingTable::Impl& impl_;
  const IndexTensor& indices_;
  bool by_backend_;
  IdCheck report_;
  ZeroFilled filled_;
};

/// A lookup's hold on the table's lock: shared, or alone when the table's max_norm makes the lookup
/// write the rows it reads (renorm_looked_up). Without max_norm a lookup stays a reader.
class LookupLock {
 public:
  explicit LookupLock(const EmbeddingTable::Impl& impl)
      : shared_(impl.mutex, std::defer_lock), alone_(impl.mutex, std::defer_lock) {
    if (impl.config.max_norm) {
      alone_.lock();
    } else {
      shared_.lock();
    }
  }

 private:
  std::shared_lock<WriterPriorityMutex> shared_;
  std::unique_lock<WriterPriorityMutex> alone_;
};

/// One call's stream for its whole length (cuda_stream.hpp): the caller's CudaStreamScope, else the
/// table's, else, when an argument is memory of the table's device used in place, CUDA's legacy
/// default stream (what DLPack prescribes for a consumer that names none). Bound to the table's
/// backend, so every copy and allocation of the call follows it, not only its kernels. Made under
/// the table's lock: where an argument lives depends on where the table is.
class CallStream {
 public:
  using Argument = std::pair<const void*, std::size_t>;  // data and bytes
  CallStream(const EmbeddingTable::Impl& impl, std::initializer_list<Argument> arguments)
      : legacy_(needs_legacy(impl, arguments) ? legacy_default_stream() : nullptr),
        bound_(*impl.backend, impl.stream()) {}

 private:
  static bool needs_legacy(const EmbeddingTable::Impl& impl, std::initializer_list<Argument> arguments) {
    if (impl.stream() != nullptr || impl.backend->host_accessible()) return false;
    const CallMemory memory = impl.call_memory();
    return std::any_of(arguments.begin(), arguments.end(),
                       [&](const Argument& a) { return memory.owner(a.first, a.second) == &memory.table; });
  }
  CudaStreamScope legacy_;
  BoundStream bound_;
};

/// torch's max_norm before a lookup of `ids` (the call's indices, staged), under a LookupLock:
/// nothing without max_norm. Otherwise the ids are checked on the host first, so a bad id under
/// bounds_check error throws before any row changes (the operation that follows then reports
/// nothing), and each distinct in-range row looked up, padding_idx included, is renormalised.
inline void renorm_looked_up(const EmbeddingTable::Impl& impl, IdsCheck& check, const DeviceIds& ids) {
  if (!impl.config.max_norm) return;
  if (check.report() != nullptr) check.check_on_host();
  impl.backend->renorm_rows(impl.view(), ids, *impl.config.max_norm, impl.config.norm_type);
}

// Counts zero-filled ids and warns on the first one and each time the table's total crosses a
// power of two, so a training loop that keeps sending bad ids is told without being flooded.
inline void record_zero_filled(EmbeddingTable::Impl& impl, const ZeroFilled& filled) {
  if (filled.count == 0) return;
  const std::int64_t before = impl.out_of_range_count.fetch_add(filled.count);
  const std::int64_t after = before + filled.count;
  if (std::bit_width(static_cast<std::uint64_t>(before)) != std::bit_width(static_cast<std::uint64_t>(after))) {
    logger().warn("table '{}': {} out-of-range ids read as zeros ({} so far); first: {}", impl.config.name,
                  filled.count, after, filled.first);
  }
}

/// Refuses `output` when it overlaps one of `inputs` or the table's memory (memory_overlap.hpp).
inline void check_output_apart(const EmbeddingTable::Impl& impl, const NamedBytes& output,
                               std::vector<NamedBytes> inputs) {
  for (NamedBytes& owned : impl.memory()) inputs.push_back(std::move(owned));
  check_outputs_apart(std::span(&output, 1), inputs);
}

/// Refuses a train step whose inputs overlap the table's memory, the step's output: the rule of
/// memory_overlap.hpp with the weights and optimizer state as what is written.
inline void check_inputs_apart_from_table(const EmbeddingTable::Impl& impl, std::span<const NamedBytes> inputs) {
  check_outputs_apart(impl.memory(), inputs);
}

/// Checks a pooled lookup's indices (1-D), offsets (CSR) and weights (none with max; one per
/// index otherwise) as lookup_pooled documents, and returns the number of bags.
std::int64_t check_pooled_arguments(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                                    std::span<const float> per_sample_weights);

}  // namespace detail
}  // namespace embedkit
