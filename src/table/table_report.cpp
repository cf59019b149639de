// What a table reports about itself: summary() and info_json().
#include <embedkit/table.hpp>
#include <embedkit/version.hpp>

#include "config/config_json.hpp"
#include "config/optimizer_rules.hpp"
#include "core/ids.hpp"
#include "core/shape.hpp"
#include "table/table_impl.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <mutex>

namespace embedkit {

Summary EmbeddingTable::summary() const {
  std::shared_lock lock(impl_->mutex);
  Summary summary;
  summary.name = impl_->config.name;
  summary.rows = input_dim();
  summary.dim = output_dim();
  summary.parameters = static_cast<std::int64_t>(impl_->weight_count());
  summary.trainable = impl_->config.trainable;
  summary.dense_step = detail::updates_every_row(impl_->config);
  summary.dtype = impl_->config.dtype;
  summary.placement = impl_->placement;
  return summary;
}

Summary EmbeddingTable::summary(std::span<const std::int64_t> batch_shape) const {
  Summary summary = this->summary();
  summary.output_shape.assign(batch_shape.begin(), batch_shape.end());
  summary.output_shape.push_back(output_dim());
  summary.output_bytes =
      static_cast<std::uint64_t>(detail::checked_numel(summary.output_shape, "summary batch", sizeof(float))) *
      sizeof(float);
  return summary;
}

Summary EmbeddingTable::summary(const IndexTensor& batch) const {
  Summary summary = this->summary(batch.shape());
  summary.batch_entries = batch.size();
  if (impl_->config.mask_zero) {
    summary.padding_entries = detail::with_ids(batch, [&](const auto* ids) {
      return static_cast<std::int64_t>(std::count(ids, ids + batch.size(), 0));
    });
  }
  return summary;
}

std::string EmbeddingTable::info_json() const {
  std::shared_lock lock(impl_->mutex);
  const PlacementDecision& placement = impl_->placement;
  nlohmann::json placement_json = {{"device", placement.device_name()},
                                   {"reason_code", to_string(placement.reason_code)},
                                   {"reason", placement.reason}};
  if (placement.device_free_bytes) placement_json["device_free_bytes"] = *placement.device_free_bytes;
  // Each optimizer state array's shape by name, in optimizer_state_names() order.
  nlohmann::json state_shapes = nlohmann::json::array();
  for (const detail::SlotSpec& spec : impl_->slot_specs) {
    state_shapes.push_back({{"name", spec.name},
                            {"shape", spec.per_row ? nlohmann::json::array({input_dim()})
                                                   : nlohmann::json::array({input_dim(), spec.width})}});
  }
  const nlohmann::json info = {
      {"embedkit_version", EMBEDKIT_VERSION_STRING},
      {"name", impl_->config.name},
      {"input_dim", input_dim()},
      {"output_dim", output_dim()},
      {"seed", seed()},
      {"step", step()},
      {"trainable", impl_->config.trainable},
      {"out_of_range_ids", out_of_range_count()},
      {"config", detail::config_to_json(impl_->config)},
      {"optimizer_state", state_shapes},
      {"placement", placement_json},
      {"bytes",
       {{"weights", placement.bytes.weights},
        {"optimizer_state", placement.bytes.optimizer_state},
        {"workspace", placement.bytes.workspace},
        {"step_scratch", placement.bytes.step_scratch},
        {"total", placement.bytes.total()}}},
  };
  // Writers change a few values between two calls of a reader: the step and the out-of-range count
  // (training, lookups), the learning rate (schedules), trainable. Trailing spaces (JSON whitespace)
  // pad the text to its length with each of them at its widest, so its size stays the same and the
  // C ABI's size query then fill holds while another thread trains.
  nlohmann::json widest = info;
  widest["step"] = std::numeric_limits<std::int64_t>::max();
  widest["out_of_range_ids"] = std::numeric_limits<std::int64_t>::max();
  widest["trainable"] = false;
  widest["config"]["trainable"] = false;
  if (widest["config"]["optimizer"].is_object()) {
    widest["config"]["optimizer"]["config"]["learning_rate"] = -std::numeric_limits<double>::min();  // 24 characters
  }
  std::string text = info.dump();
  text.append(widest.dump().size() - text.size(), ' ');
  return text;
}

}  // namespace embedkit
