#include <embedkit/detail/id_range.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include "backend/backends.hpp"
#include "backend/staging.hpp"
#include "config/initializer_resolve.hpp"
#include "core/expects.hpp"
#include "core/log.hpp"
#include "core/shape.hpp"
#include "placement/placement_inputs.hpp"
#include "table/table_access.hpp"
#include "table/table_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <span>
#include <type_traits>
#include <vector>

namespace embedkit {
namespace detail {

void check_weight_shape(const TableConfig& config, std::span<const std::int64_t> shape) {
  const std::int64_t expected[] = {config.input_dim, config.output_dim};
  EMBEDKIT_EXPECTS(std::equal(shape.begin(), shape.end(), std::begin(expected), std::end(expected)),
                   Status::shape_mismatch, "table '{}' weight shape {} is not compatible with provided weight shape {}",
                   config.name, detail::format_shape(expected), detail::format_shape(shape));
}

}  // namespace detail

namespace {

// Elements converted per pass between float32 and narrower rows: bounds the host buffer.
constexpr std::uint64_t kConvertChunk = std::uint64_t{1} << 20;

}  // namespace

void EmbeddingTable::Impl::read_floats(std::uint64_t first, std::uint64_t count, float* out) const {
  if (config.dtype == DType::float32) {
    backend->copy_to_host(out, weights.as<float>() + first, count * sizeof(float));
    return;
  }
  detail::with_dtype(config.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, float>) {
      std::vector<T> chunk(static_cast<std::size_t>(std::min(count, kConvertChunk)));
      for (std::uint64_t at = 0; at < count; at += kConvertChunk) {
        const std::uint64_t n = std::min(count - at, kConvertChunk);
        backend->copy_to_host(chunk.data(), weights.as<T>() + first + at, n * sizeof(T));
        for (std::uint64_t k = 0; k < n; ++k) out[at + k] = detail::widen(chunk[k]);
      }
    }
  });
}

void EmbeddingTable::Impl::write_floats(std::uint64_t first, std::uint64_t count, const float* values) const {
  if (config.dtype == DType::float32) {
    backend->copy_from_host(weights.as<float>() + first, values, count * sizeof(float));
    return;
  }
  detail::with_dtype(config.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, float>) {
      std::vector<T> chunk(static_cast<std::size_t>(std::min(count, kConvertChunk)));
      for (std::uint64_t at = 0; at < count; at += kConvertChunk) {
        const std::uint64_t n = std::min(count - at, kConvertChunk);
        for (std::uint64_t k = 0; k < n; ++k) chunk[k] = detail::narrow_nearest<T>(values[at + k]);
        backend->copy_from_host(weights.as<T>() + first + at, chunk.data(), n * sizeof(T));
      }
    }
  });
}

namespace {

using detail::check_weight_shape;
using Impl = EmbeddingTable::Impl;

// The table's memory on `backend`: weights and every optimizer slot, uninitialised.
struct Storage {
  detail::DeviceBuffer weights;
  std::vector<detail::DeviceBuffer> slots;
};

Storage allocate_storage(detail::Backend& backend, const TableConfig& config,
                         const std::vector<detail::SlotSpec>& specs) {
  Storage storage;
  const auto rows = static_cast<std::size_t>(config.input_dim);
  storage.weights =
      backend.allocate(rows * static_cast<std::size_t>(config.output_dim) * detail::storage_bytes(config.dtype),
                       fmt::format("table '{}' weights", config.name));
  for (const detail::SlotSpec& spec : specs) {
    storage.slots.push_back(backend.allocate(rows * static_cast<std::size_t>(spec.width) * sizeof(float),
                                             fmt::format("table '{}' {}", config.name, spec.name)));
  }
  return storage;
}

// Host memory for the CPU: weights and state must fit what is available, checked before allocating.
void check_host_memory(const TableConfig& config, const ByteBreakdown& bytes) {
  const std::uint64_t resident = bytes.weights + bytes.optimizer_state;
  const std::uint64_t available = detail::host_memory_available();
  EMBEDKIT_EXPECTS(resident <= available, Status::out_of_memory,
                   "table '{}' needs {} (weights {}, {} state {}) but only {} of host memory is available", config.name,
                   format_bytes(resident), format_bytes(bytes.weights), to_string(config.optimizer.kind),
                   format_bytes(bytes.optimizer_state), format_bytes(available));
}

void log_placement(const Impl& impl) {
  detail::logger().info("table '{}' placed on {}: {}", impl.config.name, impl.placement.device_name(),
                        impl.placement.reason);
}

}  // namespace

EmbeddingTable::EmbeddingTable(TableConfig config, Context& context)
    : EmbeddingTable(std::move(config), context, Fill::initializer) {}

EmbeddingTable::EmbeddingTable(TableConfig config, Context& context, Fill fill, const detail::RowSlice* rows)
    : impl_(std::make_unique<Impl>()) {
  config.validate();
  if (!config.seed) config.seed = detail::draw_seed();
  Context::Impl& ctx = context.impl();
  std::unique_lock placing(ctx.placement_mutex);
  const detail::PlacementInputs inputs = detail::placement_inputs(config, ctx);
  PlacementDecision placement = detail::decide_placement(inputs);
  const std::vector<detail::SlotSpec> specs = detail::slot_specs(config.optimizer, config.output_dim);

  impl_->context = &context;
  impl_->slot_specs = specs;
  if (rows != nullptr) {
    impl_->matrix_row_first = static_cast<std::uint64_t>(rows->first);
    impl_->matrix_row_stride = static_cast<std::uint64_t>(rows->stride);
  }
  if (placement.device == DeviceKind::cuda) {
    try {
      Storage storage = allocate_storage(*ctx.device, config, specs);
      impl_->weights = std::move(storage.weights);
      impl_->slots = std::move(storage.slots);
      impl_->backend = ctx.device.get();
      // In the ledger at once (~Impl takes it out again if this constructor fails later on).
      impl_->ledger_bytes = inputs.bytes.total();
      impl_->ledger_resident = inputs.bytes.weights + inputs.bytes.optimizer_state;
      ctx.reserve(impl_->ledger_bytes, impl_->ledger_resident);
    } catch (const Error& e) {
      if (e.status() != Status::out_of_memory) throw;
      EMBEDKIT_EXPECTS(inputs.policy != PlacementPolicy::cuda, Status::out_of_memory,
                       "table '{}': placement 'cuda' was requested, but {}; use placement 'auto' or 'cpu', or free "
                       "device memory",
                       config.name, e.what());
      detail::logger().warn("{}; falling back to the CPU", e.what());
      placement.device = DeviceKind::cpu;
      placement.device_label = "cpu";
      placement.reason_code = PlacementReason::device_allocation_failed;
      placement.reason = fmt::format("it should have fit on {}, but {}", ctx.device->name(), e.what());
    }
  }
  placing.unlock();
  if (impl_->backend == nullptr) {
    check_host_memory(config, inputs.bytes);
    Storage storage = allocate_storage(detail::cpu_backend(), config, specs);
    impl_->weights = std::move(storage.weights);
    impl_->slots = std::move(storage.slots);
    impl_->backend = &detail::cpu_backend();
  }
  detail::Backend& backend = *impl_->backend;
  impl_->resources = backend.open_table();
  if (fill == Fill::initializer) {
    const std::uint64_t seed = config.embeddings_initializer.seed.value_or(*config.seed);
    // Fans (VarianceScaling) are the whole matrix's, so every slice of it draws the same values.
    detail::InitSampler sampler = detail::resolve_sampler(
        config.embeddings_initializer, rows != nullptr ? rows->matrix_rows : config.input_dim, config.output_dim);
    if (rows != nullptr) {
      sampler.row_first = static_cast<std::uint64_t>(rows->first);
      sampler.row_stride = static_cast<std::uint64_t>(rows->stride);
    }
    backend.fill_initial({impl_->weights.as<void>(), config.dtype}, config.input_dim, config.output_dim, sampler, seed);
    // As torch.nn.Embedding does: a padding row that reads as itself starts at zeros (all bits
    // zero in every storage type).
    if (config.padding_idx && config.padding_reads == PaddingReads::row) {
      const std::size_t row_bytes = static_cast<std::size_t>(config.output_dim) * detail::storage_bytes(config.dtype);
      const std::vector<std::byte> zeros(row_bytes);
      backend.copy_from_host(impl_->weights.as<std::byte>() + *config.padding_idx * row_bytes, zeros.data(), row_bytes);
    }
  }
  for (std::size_t k = 0; k < specs.size(); ++k) {
    backend.fill(impl_->slots[k].as<float>(), config.input_dim * specs[k].width, specs[k].initial);
  }
  impl_->placement = std::move(placement);
  impl_->config = std::move(config);
  log_placement(*impl_);
}

EmbeddingTable EmbeddingTable::from_pretrained(const Array<float>& matrix, bool trainable, TableConfig config,
                                               Context& context) {
  if (matrix.shape.size() == 2) {
    if (config.input_dim == 0) config.input_dim = matrix.shape[0];
    if (config.output_dim == 0) config.output_dim = matrix.shape[1];
  }
  check_weight_shape(config, matrix.shape);  // before allocating a table of the wrong size
  config.trainable = trainable;
  EmbeddingTable table(std::move(config), context, Fill::none);  // the matrix overwrites every value
  table.set_weights(matrix);
  return table;
}

EmbeddingTable::~EmbeddingTable() = default;
EmbeddingTable::EmbeddingTable(EmbeddingTable&&) noexcept = default;
EmbeddingTable& EmbeddingTable::operator=(EmbeddingTable&&) noexcept = default;

TableConfig EmbeddingTable::config() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->config;
}
std::int64_t EmbeddingTable::input_dim() const noexcept { return impl_->config.input_dim; }
std::int64_t EmbeddingTable::output_dim() const noexcept { return impl_->config.output_dim; }
std::uint64_t EmbeddingTable::seed() const noexcept { return *impl_->config.seed; }
std::int64_t EmbeddingTable::step() const noexcept { return impl_->step; }
bool EmbeddingTable::trainable() const noexcept {
  std::shared_lock lock(impl_->mutex);
  return impl_->config.trainable;
}

void EmbeddingTable::set_trainable(bool trainable) {
  std::unique_lock lock(impl_->mutex);
  impl_->config.trainable = trainable;
}

PlacementDecision EmbeddingTable::placement() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->placement;
}
std::int64_t EmbeddingTable::out_of_range_count() const noexcept { return impl_->out_of_range_count.load(); }

Array<float> EmbeddingTable::lookup(const IndexTensor& indices) const {
  Array<float> out = detail::lookup_output(indices, output_dim());
  lookup(indices, out.values);
  return out;
}

void EmbeddingTable::lookup(const IndexTensor& indices, std::span<float> out) const {
  const TableConfig& config = impl_->config;
  const std::int64_t count = indices.size();
  detail::expect_floats("lookup output", out.size(), indices, config.output_dim);
  const detail::LookupLock lock(*impl_);  // alone under max_norm, which writes the rows it reads
  detail::check_output_apart(*impl_, {"out", out.data(), out.size_bytes()},
                             {{"indices", indices.data(), detail::index_bytes(indices)}});
  const detail::CallStream on(*impl_, {{indices.data(), detail::index_bytes(indices)}, {out.data(), out.size_bytes()}});
  detail::IdsCheck check(*impl_, indices);
  detail::Staging staging(impl_->call_memory());
  const detail::DeviceIds ids{staging.in(indices.data(), detail::index_bytes(indices), "lookup ids"), indices.type(),
                              count};
  float* device_out = static_cast<float*>(staging.out(out.data(), out.size_bytes(), "lookup output"));
  detail::renorm_looked_up(*impl_, check, ids);
  impl_->backend->gather(impl_->lookup_view(), ids, device_out, check.report());
  const detail::ZeroFilled filled = check.result();
  staging.finish();
  detail::record_zero_filled(*impl_, filled);
}

Array<std::uint8_t> EmbeddingTable::compute_mask(const IndexTensor& indices) const {
  Array<std::uint8_t> mask;
  mask.shape = indices.shape();
  mask.values = Buffer<std::uint8_t>::uninitialized(static_cast<std::size_t>(indices.size()));
  compute_mask(indices, mask.values);
  return mask;
}

void EmbeddingTable::compute_mask(const IndexTensor& indices, std::span<std::uint8_t> out) const {
  EMBEDKIT_EXPECTS(out.size() == static_cast<std::size_t>(indices.size()), Status::shape_mismatch,
                   "mask must hold {} entries for indices of shape {}, got {}", indices.size(),
                   detail::format_shape(indices.shape()), out.size());
  std::shared_lock lock(impl_->mutex);  // for the table's memory: migrate moves it
  detail::check_output_apart(*impl_, {"mask", out.data(), out.size_bytes()},
                             {{"indices", indices.data(), detail::index_bytes(indices)}});
  // The mask depends on the ids alone and is made on the host: no table memory is read. Ids in
  // device memory are read from a host copy, and a mask in device memory is written from one.
  const detail::CallMemory memory = impl_->call_memory();
  detail::BackendMemory* mask_owner = memory.owner(out.data(), out.size_bytes());
  std::vector<std::uint8_t> host_mask(mask_owner != nullptr ? out.size() : 0);
  const std::span<std::uint8_t> mask = mask_owner != nullptr ? std::span<std::uint8_t>(host_mask) : out;
  if (!impl_->config.mask_zero) {
    std::fill(mask.begin(), mask.end(), std::uint8_t{1});  // memset would see NULL for an empty mask
  } else {
    detail::with_ids(indices, [&](const auto* ids) {
      using Index = std::remove_cv_t<std::remove_pointer_t<decltype(ids)>>;
      std::vector<Index> copy;
      const auto host = detail::on_host(memory, std::span<const Index>(ids, out.size()), copy);
      detail::host_ops().nonzero_mask(detail::host_ids(host.data(), indices.size()), mask.data());
    });
  }
  if (mask_owner != nullptr) {
    const detail::BoundStream bound(*mask_owner, memory.device_tensor_stream());
    mask_owner->copy_from_host(out.data(), host_mask.data(), host_mask.size());
  }
}

Array<float> EmbeddingTable::get_weights() const {
  Array<float> weights;
  weights.shape = {input_dim(), output_dim()};
  weights.values = Buffer<float>::uninitialized(static_cast<std::size_t>(impl_->weight_count()));
  get_weights(weights.values);
  return weights;
}

void EmbeddingTable::get_weights(std::span<float> out) const {
  EMBEDKIT_EXPECTS(out.size() == impl_->weight_count(), Status::shape_mismatch,
                   "weights output must hold {} x {} = {} floats, got {}", input_dim(), output_dim(),
                   impl_->weight_count(), out.size());
  std::shared_lock lock(impl_->mutex);
  detail::check_output_apart(*impl_, {"out", out.data(), out.size_bytes()}, {});
  impl_->read_floats(0, out.size(), out.data());
}

void EmbeddingTable::set_weights(std::span<const float> values, std::span<const std::int64_t> shape) {
  check_weight_shape(impl_->config, shape);
  EMBEDKIT_EXPECTS(values.size() == impl_->weight_count(), Status::invalid_argument,
                   "weights of shape {} must hold {} values, got {}", detail::format_shape(shape),
                   impl_->weight_count(), values.size());
  std::unique_lock lock(impl_->mutex);
  if (detail::writes_weights_onto_themselves({"weights", values.data(), values.size_bytes()},
                                             impl_->memory().front())) {
    return;  // the table's own weights, e.g. through a view of them: nothing to change
  }
  impl_->write_floats(0, values.size(), values.data());
}

void EmbeddingTable::set_weights(const Array<float>& weights) { set_weights(weights.values, weights.shape); }

std::vector<float> EmbeddingTable::row(std::int64_t id) const {
  EMBEDKIT_EXPECTS(detail::id_in_range(id, input_dim()), Status::out_of_range, "row id {} is not in [0, {})", id,
                   input_dim());
  std::vector<float> values(static_cast<std::size_t>(output_dim()));
  std::shared_lock lock(impl_->mutex);
  impl_->read_floats(static_cast<std::uint64_t>(id * output_dim()), values.size(), values.data());
  return values;
}

void EmbeddingTable::set_row(std::int64_t id, std::span<const float> values) {
  EMBEDKIT_EXPECTS(detail::id_in_range(id, input_dim()), Status::out_of_range, "row id {} is not in [0, {})", id,
                   input_dim());
  EMBEDKIT_EXPECTS(values.size() == static_cast<std::size_t>(output_dim()), Status::shape_mismatch,
                   "row shape ({},) is not compatible with provided row shape ({},)", output_dim(), values.size());
  std::unique_lock lock(impl_->mutex);
  impl_->write_floats(static_cast<std::uint64_t>(id * output_dim()), values.size(), values.data());
}

}  // namespace embedkit
