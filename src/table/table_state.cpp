// The table's memory as a caller reads, views and restores it: the weights in place (a CPU table's
// WeightsView) and the optimizer's state with its step count.
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include "core/expects.hpp"
#include "core/memory_overlap.hpp"
#include "core/shape.hpp"
#include "table/table_impl.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <mutex>
#include <shared_mutex>
#include <vector>

namespace embedkit {

WeightsView EmbeddingTable::weights_view() {
  Impl& impl = *impl_;
  // Shared: a view changes no value; migrate, which takes the lock alone, sees the count.
  std::shared_lock lock(impl.mutex);
  EMBEDKIT_EXPECTS(impl.backend->kind() == DeviceKind::cpu, Status::unsupported,
                   "table '{}' is on {}: its weights cannot be viewed in place from the host; read them with "
                   "get_weights and write them with set_weights",
                   impl.config.name, impl.backend->name());
  EMBEDKIT_EXPECTS(impl.config.dtype == DType::float32, Status::unsupported,
                   "table '{}' stores its rows as {}: a view in place is of float32 rows; read them with get_weights "
                   "and write them with set_weights",
                   impl.config.name, to_string(impl.config.dtype));
  ++impl.weight_views;
  std::shared_ptr<void> release(&impl.weight_views,
                                [](void* count) { --*static_cast<std::atomic<std::int64_t>*>(count); });
  const std::span<float> values(impl.weights.as<float>(), static_cast<std::size_t>(impl.weight_count()));
  return WeightsView(values, impl.config.input_dim, impl.config.output_dim, std::move(release));
}

std::vector<std::string> EmbeddingTable::optimizer_state_names() const {
  std::vector<std::string> names;
  for (const auto& spec : impl_->slot_specs) names.push_back(spec.name);
  return names;
}

Array<float> EmbeddingTable::optimizer_state(std::string_view name) const {
  for (std::size_t k = 0; k < impl_->slot_specs.size(); ++k) {
    const detail::SlotSpec& spec = impl_->slot_specs[k];
    if (spec.name != name) continue;
    Array<float> state;
    state.shape =
        spec.per_row ? std::vector<std::int64_t>{input_dim()} : std::vector<std::int64_t>{input_dim(), spec.width};
    state.values = Buffer<float>::uninitialized(static_cast<std::size_t>(input_dim() * spec.width));
    std::shared_lock lock(impl_->mutex);
    impl_->backend->copy_to_host(state.values.data(), impl_->slots[k].as<void>(), state.values.size() * sizeof(float));
    return state;
  }
  throw Error(Status::invalid_argument,
              fmt::format("table '{}' has no optimizer state '{}' ({} keeps: {})", impl_->config.name, name,
                          to_string(impl_->config.optimizer.kind), fmt::join(optimizer_state_names(), ", ")));
}

void EmbeddingTable::set_optimizer_state(std::int64_t step, std::span<const NamedArray> slots) {
  Impl& impl = *impl_;
  const std::string& table = impl.config.name;
  EMBEDKIT_EXPECTS(step >= 0, Status::invalid_argument, "table '{}': step must be >= 0, got {}", table, step);
  const std::vector<std::string> names = optimizer_state_names();
  // Every check before anything is copied: all slots or none.
  std::vector<const NamedArray*> by_slot(names.size(), nullptr);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const NamedArray& given = slots[i];
    std::size_t k = 0;
    while (k < names.size() && names[k] != given.name) ++k;
    EMBEDKIT_EXPECTS(k < names.size(), Status::invalid_argument,
                     "table '{}' has no optimizer state '{}' ({} keeps: {})", table, given.name,
                     to_string(impl.config.optimizer.kind), fmt::join(names, ", "));
    EMBEDKIT_EXPECTS(by_slot[k] == nullptr, Status::invalid_argument,
                     "table '{}': optimizer state '{}' is given twice (slots[{}])", table, given.name, i);
    const detail::SlotSpec& spec = impl.slot_specs[k];
    const std::vector<std::int64_t> expected = spec.per_row
                                                   ? std::vector<std::int64_t>{impl.config.input_dim}
                                                   : std::vector<std::int64_t>{impl.config.input_dim, spec.width};
    EMBEDKIT_EXPECTS(std::equal(given.shape.begin(), given.shape.end(), expected.begin(), expected.end()),
                     Status::shape_mismatch, "table '{}': optimizer state '{}' has shape {}, got shape {}", table,
                     given.name, detail::format_shape(expected), detail::format_shape(given.shape));
    EMBEDKIT_EXPECTS(given.values.size() == static_cast<std::size_t>(impl.config.input_dim * spec.width),
                     Status::invalid_argument,
                     "table '{}': optimizer state '{}' of shape {} must hold {} values, got {}", table, given.name,
                     detail::format_shape(given.shape), impl.config.input_dim * spec.width, given.values.size());
    by_slot[k] = &given;
  }
  for (std::size_t k = 0; k < names.size(); ++k) {
    EMBEDKIT_EXPECTS(by_slot[k] != nullptr, Status::invalid_argument,
                     "table '{}': optimizer state '{}' is missing ({} keeps: {})", table, names[k],
                     to_string(impl.config.optimizer.kind), fmt::join(names, ", "));
  }
  std::unique_lock lock(impl.mutex);
  std::vector<detail::NamedBytes> inputs;
  for (const NamedArray& given : slots) {
    inputs.push_back({fmt::format("optimizer state '{}'", given.name), given.values.data(), given.values.size_bytes()});
  }
  detail::check_inputs_apart_from_table(impl, inputs);
  for (std::size_t k = 0; k < names.size(); ++k) {
    impl.backend->copy_from_host(impl.slots[k].as<void>(), by_slot[k]->values.data(), by_slot[k]->values.size_bytes());
  }
  impl.step = step;
}

}  // namespace embedkit
