// EmbeddingTable::migrate and set_cuda_stream: where a live table works.
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include "backend/backends.hpp"
#include "config/optimizer_rules.hpp"
#include "core/expects.hpp"
#include "core/log.hpp"
#include "placement/placement_inputs.hpp"
#include "table/table_impl.hpp"

#include <fmt/format.h>

#include <mutex>
#include <shared_mutex>
#include <vector>

namespace embedkit {
namespace {

using Impl = EmbeddingTable::Impl;

detail::Backend& target_backend(Impl& impl, std::string_view device) {
  if (device == "cpu") return detail::cpu_backend();
  Context::Impl& context = impl.context->impl();
  EMBEDKIT_EXPECTS(device == "cuda" || (context.device && device == context.device->name()), Status::invalid_argument,
                   "migrate: device must be 'cpu' or 'cuda'{}, got '{}'",
                   context.device ? " or '" + context.device->name() + "'" : std::string(), device);
  EMBEDKIT_EXPECTS(context.device, Status::unsupported, "migrate: table '{}' cannot move to '{}': {}", impl.config.name,
                   device,
                   context.built_with_cuda ? "no CUDA device is usable (" + context.no_device_reason + ")"
                                           : std::string("this embedkit was built without CUDA"));
  return *context.device;
}

// Copies `bytes` from one backend's memory to another's through the host.
void copy_across(detail::Backend& from, const void* source, detail::Backend& to, void* destination, std::size_t bytes) {
  std::vector<unsigned char> host(bytes);
  from.copy_to_host(host.data(), source, bytes);
  to.copy_from_host(destination, host.data(), bytes);
}

}  // namespace

void EmbeddingTable::migrate(std::string_view device) {
  Impl& impl = *impl_;
  detail::Backend& target = target_backend(impl, device);
  std::unique_lock lock(impl.mutex);
  if (&target == impl.backend) return;
  const std::int64_t views = impl.weight_views.load();
  EMBEDKIT_EXPECTS(views == 0, Status::busy,
                   "migrate: table '{}' has {} live view{} of its weights (weights_view(), a framework tensor such "
                   "as a torch module's .weight); release {} first: migrate replaces the memory they point to",
                   impl.config.name, views, views == 1 ? "" : "s", views == 1 ? "it" : "them");
  const TableConfig& config = impl.config;
  const ByteBreakdown bytes = detail::held_on(impl.placement.bytes, target.kind());
  Context::Impl& context = impl.context->impl();
  const bool to_device = target.kind() == DeviceKind::cuda;
  std::unique_lock placing(context.placement_mutex, std::defer_lock);
  if (to_device) {
    placing.lock();
    // The checks of a forced placement, against today's memory and ledger.
    detail::PlacementInputs inputs = detail::placement_inputs(config, context);
    inputs.policy = PlacementPolicy::cuda;
    inputs.policy_from_environment = false;
    detail::decide_placement(inputs);
  }
  // Everything new is allocated and filled before anything old is let go.
  detail::DeviceBuffer weights = target.allocate(impl.weights.bytes(), fmt::format("table '{}' weights", config.name));
  std::vector<detail::DeviceBuffer> slots;
  for (std::size_t k = 0; k < impl.slots.size(); ++k) {
    slots.push_back(
        target.allocate(impl.slots[k].bytes(), fmt::format("table '{}' {}", config.name, impl.slot_specs[k].name)));
  }
  std::unique_ptr<detail::TableResources> resources = target.open_table();
  copy_across(*impl.backend, impl.weights.as<void>(), target, weights.as<void>(), weights.bytes());
  for (std::size_t k = 0; k < slots.size(); ++k) {
    copy_across(*impl.backend, impl.slots[k].as<void>(), target, slots[k].as<void>(), slots[k].bytes());
  }
  const std::string from = impl.backend->name();
  impl.resources = std::move(resources);
  impl.weights = std::move(weights);
  impl.slots = std::move(slots);
  impl.backend = &target;
  if (impl.ledger_bytes > 0) context.release(impl.ledger_bytes, impl.ledger_resident);
  impl.ledger_bytes = to_device ? bytes.total() : 0;
  impl.ledger_resident = to_device ? bytes.weights + bytes.optimizer_state : 0;
  if (to_device) context.reserve(impl.ledger_bytes, impl.ledger_resident);
  impl.placement.device = target.kind();
  impl.placement.bytes = bytes;
  impl.placement.device_label = target.name();
  impl.placement.reason_code = PlacementReason::migrated;
  impl.placement.reason = fmt::format("moved from {} to {} by migrate()", from, target.name());
  if (detail::updates_every_row(config)) {
    impl.placement.reason += "; " + detail::dense_step_text(config.input_dim, config.output_dim);
  }
  detail::logger().info("table '{}' placed on {}: {}", config.name, target.name(), impl.placement.reason);
}

void EmbeddingTable::set_cuda_stream(void* stream) {
  std::unique_lock lock(impl_->mutex);
  EMBEDKIT_EXPECTS(impl_->backend->kind() == DeviceKind::cuda, Status::unsupported,
                   "table '{}' is on {}: a CUDA stream applies only to tables on a CUDA device", impl_->config.name,
                   impl_->backend->name());
  impl_->cuda_stream = stream;
}

void* EmbeddingTable::cuda_stream() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->cuda_stream;
}

}  // namespace embedkit
