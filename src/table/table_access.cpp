#include "table/table_access.hpp"

#include <embedkit/status.hpp>

#include "core/expects.hpp"
#include "table/table_impl.hpp"

#include <fmt/format.h>

#include <mutex>

namespace embedkit::detail {

EmbeddingTable TableAccess::make_slice(TableConfig config, Context& context, const RowSlice& rows) {
  return EmbeddingTable(std::move(config), context, EmbeddingTable::Fill::initializer, &rows);
}

EmbeddingTable TableAccess::restore(TableConfig config, Context& context, std::span<const float> weights,
                                    const std::vector<std::vector<float>>& slots, std::int64_t step,
                                    const RowSlice& rows_of) {
  const std::vector<SlotSpec> specs = slot_specs(config.optimizer, config.output_dim);
  const auto rows = static_cast<std::size_t>(config.input_dim);
  EMBEDKIT_EXPECTS(weights.size() == rows * static_cast<std::size_t>(config.output_dim) && slots.size() == specs.size(),
                   Status::invalid_argument,
                   "table '{}': restoring needs {} x {} weights and {} state arrays, got {} and {}", config.name,
                   config.input_dim, config.output_dim, specs.size(), weights.size(), slots.size());
  for (std::size_t k = 0; k < specs.size(); ++k) {
    EMBEDKIT_EXPECTS(slots[k].size() == rows * static_cast<std::size_t>(specs[k].width), Status::invalid_argument,
                     "table '{}': state '{}' needs {} x {} floats, got {}", config.name, specs[k].name, rows,
                     specs[k].width, slots[k].size());
  }
  EmbeddingTable table(std::move(config), context, EmbeddingTable::Fill::none, &rows_of);
  EmbeddingTable::Impl& impl = *table.impl_;
  impl.write_floats(0, weights.size(), weights.data());
  for (std::size_t k = 0; k < specs.size(); ++k) {
    impl.backend->copy_from_host(impl.slots[k].as<void>(), slots[k].data(), slots[k].size() * sizeof(float));
  }
  impl.step = step;
  return table;
}

std::vector<NamedBytes> TableAccess::memory(const EmbeddingTable& table) {
  std::shared_lock lock(table.impl_->mutex);
  return table.impl_->memory();
}

}  // namespace embedkit::detail
