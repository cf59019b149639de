#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include "../cpu/fill.hpp"
#include "../cpu/gather.hpp"
#include "../cpu/index_scan.hpp"
#include "../cpu/mask.hpp"
#include "dispatch/device_probe.hpp"
#include "dispatch/placement.hpp"
#include "initializer_resolve.hpp"
#include "log.hpp"
#include "shape.hpp"
#include "table_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>

namespace embedkit {
namespace {

// Drawn seeds stay below 2^53 so that every JSON reader (JavaScript's included) keeps them exact.
std::uint64_t draw_seed() {
  std::random_device device;
  const std::uint64_t high = device(), low = device();
  return ((high << 32) | low) & ((std::uint64_t{1} << 53) - 1);
}

ByteBreakdown bytes_needed(const TableConfig& config) {
  std::uint64_t weights = 0;
  const bool overflow =
      __builtin_mul_overflow(static_cast<std::uint64_t>(config.input_dim),
                             static_cast<std::uint64_t>(config.output_dim) * sizeof(float), &weights);
  if (overflow) {
    throw Error(Status::out_of_memory,
                fmt::format("table '{}' of {} x {} float32 weights needs more bytes than memory can "
                            "address",
                            config.name, config.input_dim, config.output_dim));
  }
  ByteBreakdown bytes;
  bytes.weights = weights;
  bytes.optimizer_state = detail::optimizer_state_bytes(config.optimizer, config.input_dim, config.output_dim);
  return bytes;
}

// A whole-matrix shape must be (input_dim, output_dim); the message is Keras's.
void check_weight_shape(const TableConfig& config, std::span<const std::int64_t> shape) {
  const std::int64_t expected[] = {config.input_dim, config.output_dim};
  if (!std::equal(shape.begin(), shape.end(), std::begin(expected), std::end(expected))) {
    throw Error(Status::shape_mismatch,
                fmt::format("table '{}' weight shape {} is not compatible with provided weight shape {}", config.name,
                            detail::format_shape(expected), detail::format_shape(shape)));
  }
}

}  // namespace

EmbeddingTable::EmbeddingTable(TableConfig config) : EmbeddingTable(std::move(config), Fill::initializer) {}

EmbeddingTable::EmbeddingTable(TableConfig config, Fill fill) : impl_(std::make_unique<Impl>()) {
  config.validate();
  if (!config.seed) config.seed = draw_seed();
  const ByteBreakdown bytes = bytes_needed(config);
  impl_->placement = detail::decide_placement(config.placement, bytes, detail::probe_cuda());
  const std::uint64_t available = detail::host_memory_available();
  if (bytes.total() > available) {
    throw Error(Status::out_of_memory,
                fmt::format("table '{}' needs {} (weights {}, {} state {}) but only {} of host memory is available",
                            config.name, format_bytes(bytes.total()), format_bytes(bytes.weights),
                            to_string(config.optimizer.kind), format_bytes(bytes.optimizer_state),
                            format_bytes(available)));
  }
  impl_->weights = detail::allocate_host_floats(bytes.weights / sizeof(float),
                                                fmt::format("table '{}' weights", config.name));
  impl_->slots = detail::allocate_slots(config.optimizer, config.input_dim, config.output_dim,
                                        fmt::format("table '{}' optimizer", config.name));
  if (fill == Fill::initializer) {
    const std::uint64_t seed = config.embeddings_initializer.seed.value_or(*config.seed);
    cpu::fill_initial(impl_->weights.get(), config.input_dim, config.output_dim,
                      detail::resolve_sampler(config.embeddings_initializer, config.input_dim, config.output_dim),
                      seed);
  }
  impl_->config = std::move(config);
  detail::logger().info("table '{}' placed on {}: {} (weights {}, optimizer state {}, workspace {})",
                        impl_->config.name, impl_->placement.device_name(), impl_->placement.reason,
                        format_bytes(bytes.weights), format_bytes(bytes.optimizer_state),
                        format_bytes(bytes.workspace));
}

EmbeddingTable EmbeddingTable::from_pretrained(const Array<float>& matrix, bool trainable, TableConfig config) {
  if (matrix.shape.size() == 2) {
    if (config.input_dim == 0) config.input_dim = matrix.shape[0];
    if (config.output_dim == 0) config.output_dim = matrix.shape[1];
  }
  check_weight_shape(config, matrix.shape);  // before allocating a table of the wrong size
  config.trainable = trainable;
  EmbeddingTable table(std::move(config), Fill::none);  // the matrix overwrites every value
  table.set_weights(matrix);
  return table;
}

EmbeddingTable::~EmbeddingTable() = default;
EmbeddingTable::EmbeddingTable(EmbeddingTable&&) noexcept = default;
EmbeddingTable& EmbeddingTable::operator=(EmbeddingTable&&) noexcept = default;

const TableConfig& EmbeddingTable::config() const noexcept { return impl_->config; }
std::int64_t EmbeddingTable::input_dim() const noexcept { return impl_->config.input_dim; }
std::int64_t EmbeddingTable::output_dim() const noexcept { return impl_->config.output_dim; }
std::uint64_t EmbeddingTable::seed() const noexcept { return *impl_->config.seed; }
std::int64_t EmbeddingTable::step() const noexcept { return impl_->step; }
bool EmbeddingTable::trainable() const noexcept { return impl_->config.trainable; }

void EmbeddingTable::set_trainable(bool trainable) {
  std::unique_lock lock(impl_->mutex);
  impl_->config.trainable = trainable;
}
const PlacementDecision& EmbeddingTable::placement() const noexcept { return impl_->placement; }
std::int64_t EmbeddingTable::out_of_range_count() const noexcept { return impl_->out_of_range_count.load(); }

Array<float> EmbeddingTable::lookup(const IndexTensor& indices) const {
  Array<float> out;
  out.shape = indices.shape();
  out.shape.push_back(output_dim());
  out.values.resize(static_cast<std::size_t>(detail::checked_numel(out.shape, "lookup output", sizeof(float))));
  lookup(indices, out.values);
  return out;
}

void EmbeddingTable::lookup(const IndexTensor& indices, std::span<float> out) const {
  const TableConfig& config = impl_->config;
  const std::int64_t count = indices.size();
  if (out.size() / static_cast<std::size_t>(config.output_dim) != static_cast<std::size_t>(count) ||
      out.size() % static_cast<std::size_t>(config.output_dim) != 0) {
    throw Error(Status::shape_mismatch,
                fmt::format("lookup output must hold {} x {} floats for indices of shape {}, got {}",
                            count, config.output_dim, detail::format_shape(indices.shape()), out.size()));
  }
  std::shared_lock lock(impl_->mutex);
  detail::with_ids(indices, [&](const auto* ids) {
    detail::check_ids(*impl_, indices, ids);
    const std::int64_t padding = config.padding_idx.value_or(-1);
    cpu::gather_rows(impl_->weights.get(), config.input_dim, config.output_dim, ids, count, padding, out.data());
  });
}

Array<std::uint8_t> EmbeddingTable::compute_mask(const IndexTensor& indices) const {
  Array<std::uint8_t> mask;
  mask.shape = indices.shape();
  mask.values.resize(static_cast<std::size_t>(indices.size()));
  compute_mask(indices, mask.values);
  return mask;
}

void EmbeddingTable::compute_mask(const IndexTensor& indices, std::span<std::uint8_t> out) const {
  if (out.size() != static_cast<std::size_t>(indices.size())) {
    throw Error(Status::shape_mismatch,
                fmt::format("mask must hold {} entries for indices of shape {}, got {}", indices.size(),
                            detail::format_shape(indices.shape()), out.size()));
  }
  if (!impl_->config.mask_zero) {
    std::fill(out.begin(), out.end(), std::uint8_t{1});  // memset would see NULL for an empty mask
    return;
  }
  detail::with_ids(indices, [&](const auto* ids) { cpu::nonzero_mask(ids, indices.size(), out.data()); });
}

Array<float> EmbeddingTable::get_weights() const {
  Array<float> weights;
  weights.shape = {input_dim(), output_dim()};
  weights.values.resize(static_cast<std::size_t>(impl_->weight_count()));
  get_weights(weights.values);
  return weights;
}

void EmbeddingTable::get_weights(std::span<float> out) const {
  if (out.size() != impl_->weight_count()) {
    throw Error(Status::shape_mismatch,
                fmt::format("weights output must hold {} x {} = {} floats, got {}", input_dim(), output_dim(),
                            impl_->weight_count(), out.size()));
  }
  std::shared_lock lock(impl_->mutex);
  std::memcpy(out.data(), impl_->weights.get(), out.size_bytes());
}

void EmbeddingTable::set_weights(std::span<const float> values, std::span<const std::int64_t> shape) {
  check_weight_shape(impl_->config, shape);
  if (values.size() != impl_->weight_count()) {
    throw Error(Status::invalid_argument,
                fmt::format("weights of shape {} must hold {} values, got {}", detail::format_shape(shape),
                            impl_->weight_count(), values.size()));
  }
  std::unique_lock lock(impl_->mutex);
  std::memcpy(impl_->weights.get(), values.data(), values.size_bytes());
}

void EmbeddingTable::set_weights(const Array<float>& weights) { set_weights(weights.values, weights.shape); }

std::vector<float> EmbeddingTable::row(std::int64_t id) const {
  if (!cpu::in_range(id, input_dim())) {
    throw Error(Status::out_of_range, fmt::format("row id {} is not in [0, {})", id, input_dim()));
  }
  std::shared_lock lock(impl_->mutex);
  const float* begin = impl_->weights.get() + id * output_dim();
  return std::vector<float>(begin, begin + output_dim());
}

void EmbeddingTable::set_row(std::int64_t id, std::span<const float> values) {
  if (!cpu::in_range(id, input_dim())) {
    throw Error(Status::out_of_range, fmt::format("row id {} is not in [0, {})", id, input_dim()));
  }
  if (values.size() != static_cast<std::size_t>(output_dim())) {
    throw Error(Status::shape_mismatch,
                fmt::format("row shape ({},) is not compatible with provided row shape ({},)", output_dim(),
                            values.size()));
  }
  std::unique_lock lock(impl_->mutex);
  std::memcpy(impl_->weights.get() + id * output_dim(), values.data(), values.size_bytes());
}

}  // namespace embedkit
