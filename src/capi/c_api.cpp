// The C ABI: opaque handles, a status per call, a thread-local last error, and one catch-all
// wrapper so no exception ever crosses into C.
#include <embedkit/buffer.hpp>
#include <embedkit/c_api.h>
#include <embedkit/cuda_stream.hpp>
#include <embedkit/plan.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>
#include <embedkit/version.hpp>

#include "backend/backends.hpp"
#include "capi/c_api_support.hpp"
#include "capi/c_api_table.hpp"
#include "capi/dlpack_view.hpp"
#include "core/expects.hpp"
#include "core/ids.hpp"
#include "core/shape.hpp"
#include "placement/context_impl.hpp"
#include "placement/plan_request_json.hpp"
#include "table/table_access.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using embedkit::Status;
using embedkit::detail::guarded;
using embedkit::detail::NamedBytes;
using embedkit::detail::TableAccess;

// The device the C ABI's tensors in CUDA memory belong to: the default context's.
embedkit::detail::Backend* default_device() { return embedkit::detail::c_api_device(); }

// A call's tensors checked, those in CUDA memory handed on in place: the table operation takes
// them where they are (used by a table on that device, staged by one elsewhere; backend/staging.hpp).
embedkit::detail::TensorStaging in_place_staging() {
  return embedkit::detail::TensorStaging(default_device(), nullptr, embedkit::detail::DeviceTensors::in_place);
}

embedkit::EmbeddingTable& table_of(ek_table* table) {
  EMBEDKIT_EXPECTS(table != nullptr, Status::invalid_argument, "table is NULL");
  return *table->table;
}

// Copies `text` and its NUL into the caller's buffer, or says in *length how much room it needs;
// neither may overlap what the call read (`read`). The buffer's bytes checked are those written (the
// text and its NUL, none when it does not fit), not the capacity the caller claims: a generous
// capacity over a later input is no overlap.
void write_text(const std::string& text, std::string_view what, char* buffer, std::size_t capacity, std::size_t* length,
                const std::vector<NamedBytes>& read) {
  EMBEDKIT_EXPECTS(length != nullptr, Status::invalid_argument, "length is NULL");
  const std::size_t needed = text.size() + 1;
  const bool fits = buffer != nullptr && capacity >= needed;
  const NamedBytes written[] = {{"buffer", buffer, fits ? needed : 0}, {"length", length, sizeof *length}};
  embedkit::detail::check_outputs_apart(written, read);
  *length = needed;
  EMBEDKIT_EXPECTS(fits, Status::invalid_argument,
                   "{} buffer holds {} bytes, but the {} needs {} (including the NUL); *length says how many", what,
                   buffer == nullptr ? 0 : capacity, what, needed);
  std::memcpy(buffer, text.c_str(), needed);
}

// A library-allocated array handed to a C caller: the DLManagedTensor's deleter frees the array,
// whose Buffer returns its memory to the output cache.
template <class T>
struct HandedOut {
  DLManagedTensor managed{};
  embedkit::Array<T> array;
};

template <class T>
constexpr DLDataType dlpack_type() {
  if constexpr (std::is_same_v<T, float>) return {kDLFloat, 32, 1};
  else return {kDLInt, 64, 1};
}

template <class T>
std::unique_ptr<HandedOut<T>> prepare_hand_out(embedkit::Array<T> array) {
  auto owner = std::make_unique<HandedOut<T>>();
  owner->array = std::move(array);
  DLTensor& tensor = owner->managed.dl_tensor;
  tensor.data = owner->array.values.data();
  tensor.device = {kDLCPU, 0};
  tensor.ndim = static_cast<std::int32_t>(owner->array.shape.size());
  tensor.dtype = dlpack_type<T>();
  tensor.shape = owner->array.shape.data();
  tensor.strides = nullptr;
  tensor.byte_offset = 0;
  owner->managed.manager_ctx = owner.get();
  owner->managed.deleter = [](DLManagedTensor* self) { delete static_cast<HandedOut<T>*>(self->manager_ctx); };
  return owner;
}

template <class T>
DLManagedTensor* hand_out(embedkit::Array<T> array) {
  return &prepare_hand_out(std::move(array)).release()->managed;
}

// A weights view handed to a C caller: it holds the table (so ek_table_destroy may come first) and
// the view (so migrate refuses) until the deleter runs.
struct HandedView {
  DLManagedTensor managed{};
  std::shared_ptr<embedkit::EmbeddingTable> table;
  embedkit::WeightsView view;
  std::int64_t shape[2] = {0, 0};
};

// The two DLManagedTensor** a sparse gradient call fills: not NULL, and apart from what it read.
void check_sparse_grad_outputs(DLManagedTensor** unique_ids, DLManagedTensor** rows,
                               const embedkit::detail::TensorStaging& staging) {
  EMBEDKIT_EXPECTS(unique_ids != nullptr && rows != nullptr, Status::invalid_argument,
                   "unique_ids and rows (the DLManagedTensor** to fill) must not be NULL");
  const NamedBytes written[] = {{"unique_ids", unique_ids, sizeof *unique_ids}, {"rows", rows, sizeof *rows}};
  embedkit::detail::check_outputs_apart(written, staging.inputs_read());
}

// A sparse gradient as two handed-out arrays: ids (n,) int64 and rows (n, dim) float32.
void hand_out_sparse_grad(embedkit::SparseGrad grad, DLManagedTensor** unique_ids, DLManagedTensor** rows) {
  const auto count = static_cast<std::int64_t>(grad.unique_ids.size());
  embedkit::Array<std::int64_t> ids{{count}, std::move(grad.unique_ids)};
  embedkit::Array<float> values{{count, grad.dim}, std::move(grad.rows)};
  auto ids_owner = prepare_hand_out(std::move(ids));
  auto rows_owner = prepare_hand_out(std::move(values));
  *unique_ids = &ids_owner.release()->managed;  // nothing below can fail: both or neither
  *rows = &rows_owner.release()->managed;
}

}  // namespace

namespace embedkit::detail {
EmbeddingTable& table_of_handle(ek_table* handle) { return *handle->table; }
}  // namespace embedkit::detail

extern "C" {

const char* ek_version(void) { return EMBEDKIT_VERSION_STRING; }

const char* ek_optimizer_name(int index) {
  // Every enumerator but the last, custom: a host callback no config can name.
  if (index < 0 || index >= static_cast<int>(embedkit::OptimizerKind::custom)) return nullptr;
  return embedkit::to_string(static_cast<embedkit::OptimizerKind>(index));
}

const char* ek_last_error(void) { return embedkit::detail::c_api_last_error().c_str(); }

const char* ek_status_name(ek_status status) { return embedkit::status_name(static_cast<Status>(status)); }

ek_status ek_table_create(const char* config_json, ek_table** out) {
  return guarded(__func__, [&] {
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the ek_table** to fill) is NULL");
    EMBEDKIT_EXPECTS(config_json != nullptr, Status::invalid_argument, "config_json is NULL");
    *out = new ek_table(embedkit::EmbeddingTable(embedkit::TableConfig::from_json(config_json)));
  });
}

void ek_table_destroy(ek_table* table) { delete table; }

ek_status ek_lookup(ek_table* t, const DLTensor* indices, DLTensor* out) {
  return ek_lookup_on_stream(t, indices, out, nullptr);
}

ek_status ek_lookup_on_stream(ek_table* t, const DLTensor* indices, DLTensor* out, void* stream) {
  return guarded("ek_lookup", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    auto staging = in_place_staging();
    const auto args = embedkit::detail::lookup_arguments(staging, indices, out, table.output_dim());
    staging.check_outputs_apart(TableAccess::memory(table));
    table.lookup(args.ids, args.out);
    staging.finish();
  });
}

ek_status ek_lookup_pooled(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                           const DLTensor* per_sample_weights, const char* mode, DLTensor* out) {
  return ek_lookup_pooled_on_stream(t, indices, offsets, per_sample_weights, mode, out, nullptr);
}

ek_status ek_lookup_pooled_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                     const DLTensor* per_sample_weights, const char* mode, DLTensor* out,
                                     void* stream) {
  return guarded("ek_lookup_pooled", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    auto staging = in_place_staging();
    const auto args = embedkit::detail::pooled_lookup_arguments(staging, indices, offsets, per_sample_weights, mode,
                                                                out, table.output_dim());
    staging.check_outputs_apart(TableAccess::memory(table));
    table.lookup_pooled(args.pooled.ids, args.pooled.offsets, args.pooled.mode, args.pooled.sample_weights, args.out);
    staging.finish();
  });
}

ek_status ek_lookup_new(ek_table* t, const DLTensor* indices, DLManagedTensor** out) {
  return ek_lookup_new_on_stream(t, indices, out, nullptr);
}

ek_status ek_lookup_new_on_stream(ek_table* t, const DLTensor* indices, DLManagedTensor** out, void* stream) {
  return guarded("ek_lookup_new", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the DLManagedTensor** to fill) is NULL");
    auto staging = in_place_staging();
    const embedkit::IndexTensor ids = staging.indices(indices);
    const NamedBytes written[] = {{"out", out, sizeof *out}};
    embedkit::detail::check_outputs_apart(written, staging.inputs_read());
    *out = hand_out(table.lookup(ids));
  });
}

ek_status ek_lookup_pooled_new(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                               const DLTensor* per_sample_weights, const char* mode, DLManagedTensor** out) {
  return ek_lookup_pooled_new_on_stream(t, indices, offsets, per_sample_weights, mode, out, nullptr);
}

ek_status ek_lookup_pooled_new_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                         const DLTensor* per_sample_weights, const char* mode, DLManagedTensor** out,
                                         void* stream) {
  return guarded("ek_lookup_pooled_new", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the DLManagedTensor** to fill) is NULL");
    auto staging = in_place_staging();
    const auto args = embedkit::detail::pooled_arguments(staging, indices, offsets, per_sample_weights, mode);
    const NamedBytes written[] = {{"out", out, sizeof *out}};
    embedkit::detail::check_outputs_apart(written, staging.inputs_read());
    *out = hand_out(table.lookup_pooled(args.ids, args.offsets, args.mode, args.sample_weights));
  });
}

ek_status ek_set_output_cache_capacity(size_t bytes) {
  return guarded(__func__, [&] { embedkit::set_output_cache_capacity(bytes); });
}

ek_status ek_train_step(ek_table* t, const DLTensor* indices, const DLTensor* grad_out) {
  return ek_train_step_on_stream(t, indices, grad_out, nullptr);
}

ek_status ek_train_step_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* grad_out, void* stream) {
  return guarded("ek_train_step", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    auto staging = in_place_staging();
    const auto args = embedkit::detail::train_arguments(staging, indices, grad_out, table.output_dim());
    // The step writes the table: its inputs, where the caller's tensors are, must lie apart from it.
    embedkit::detail::check_outputs_apart(TableAccess::memory(table), staging.inputs_read());
    table.train_step(args.ids, args.grad);
    staging.finish();
  });
}

ek_status ek_train_step_pooled(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                               const DLTensor* per_sample_weights, const char* mode, const DLTensor* grad_out) {
  return ek_train_step_pooled_on_stream(t, indices, offsets, per_sample_weights, mode, grad_out, nullptr);
}

ek_status ek_train_step_pooled_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                         const DLTensor* per_sample_weights, const char* mode, const DLTensor* grad_out,
                                         void* stream) {
  return guarded("ek_train_step_pooled", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    auto staging = in_place_staging();
    const auto args = embedkit::detail::pooled_train_arguments(staging, indices, offsets, per_sample_weights, mode,
                                                               grad_out, table.output_dim());
    embedkit::detail::check_outputs_apart(TableAccess::memory(table), staging.inputs_read());
    table.train_step_pooled(args.pooled.ids, args.pooled.offsets, args.pooled.mode, args.pooled.sample_weights,
                            args.grad);
    staging.finish();
  });
}

ek_status ek_save(ek_table* t, const char* directory) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    EMBEDKIT_EXPECTS(directory != nullptr, Status::invalid_argument, "directory is NULL");
    table.save(directory);
  });
}

ek_status ek_load(const char* directory, ek_table** out) {
  return guarded(__func__, [&] {
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the ek_table** to fill) is NULL");
    EMBEDKIT_EXPECTS(directory != nullptr, Status::invalid_argument, "directory is NULL");
    *out = new ek_table(embedkit::EmbeddingTable::load(directory));
  });
}

ek_status ek_table_migrate(ek_table* t, const char* device) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    EMBEDKIT_EXPECTS(device != nullptr, Status::invalid_argument, "device is NULL");
    table.migrate(device);
  });
}

ek_status ek_table_set_cuda_stream(ek_table* t, void* stream) {
  return guarded(__func__, [&] { table_of(t).set_cuda_stream(stream); });
}

ek_status ek_set_cuda_allocator(void* (*alloc)(size_t, void*, void*), void (*release)(void*, void*, void*), void* ctx) {
  return guarded(__func__, [&] { embedkit::detail::set_device_allocator(alloc, release, ctx); });
}

ek_status ek_set_learning_rate(ek_table* t, double lr) {
  return guarded(__func__, [&] { table_of(t).set_learning_rate(lr); });
}

ek_status ek_compute_mask(ek_table* t, const DLTensor* indices, DLTensor* mask) {
  return ek_compute_mask_on_stream(t, indices, mask, nullptr);
}

ek_status ek_compute_mask_on_stream(ek_table* t, const DLTensor* indices, DLTensor* mask, void* stream) {
  return guarded("ek_compute_mask", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    auto staging = in_place_staging();
    const embedkit::IndexTensor ids = staging.indices(indices);
    const auto output = staging.output(mask, "mask", embedkit::detail::Accept::mask);
    embedkit::detail::expect_shape("mask", ids.shape(), output.shape);
    staging.check_outputs_apart(TableAccess::memory(table));
    table.compute_mask(ids, std::span(static_cast<std::uint8_t*>(output.data), static_cast<std::size_t>(output.size)));
    staging.finish();
  });
}

ek_status ek_get_weights(ek_table* t, DLTensor* out) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    embedkit::detail::TensorStaging staging(default_device(), table.cuda_stream());
    const auto output = staging.output(out, "out", embedkit::detail::Accept::float32);
    embedkit::detail::expect_shape("out", {table.input_dim(), table.output_dim()}, output.shape);
    staging.check_outputs_apart(TableAccess::memory(table));
    table.get_weights(std::span(static_cast<float*>(output.data), static_cast<std::size_t>(output.size)));
    staging.finish();
  });
}

ek_status ek_set_weights(ek_table* t, const DLTensor* weights) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    embedkit::detail::TensorStaging staging(default_device(), table.cuda_stream());
    const auto input = staging.input(weights, "weights", embedkit::detail::Accept::float32);
    // As given (device memory too): exactly the table's weights is a no-op below, another overlap an error.
    embedkit::detail::writes_weights_onto_themselves(staging.inputs_read().front(), TableAccess::memory(table).front());
    table.set_weights(std::span(static_cast<const float*>(input.data), static_cast<std::size_t>(input.size)),
                      input.shape);
    staging.finish();
  });
}

ek_status ek_table_info(ek_table* t, char* buffer, size_t capacity, size_t* length) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    write_text(table.info_json(), "info", buffer, capacity, length, TableAccess::memory(table));
  });
}

ek_status ek_table_summary(ek_table* t, const DLTensor* batch, char* buffer, size_t capacity, size_t* length) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    std::vector<NamedBytes> read = TableAccess::memory(table);
    if (batch == nullptr) {
      write_text(table.summary().to_string(), "summary", buffer, capacity, length, read);
      return;
    }
    embedkit::detail::TensorStaging staging(default_device());
    const std::string text = table.summary(staging.indices(batch, "batch")).to_string();
    read.insert(read.end(), staging.inputs_read().begin(), staging.inputs_read().end());
    write_text(text, "summary", buffer, capacity, length, read);
  });
}

ek_status ek_plan(const char* request_json, int as_json, char* buffer, size_t capacity, size_t* length) {
  return guarded(__func__, [&] {
    EMBEDKIT_EXPECTS(request_json != nullptr, Status::invalid_argument, "request_json is NULL");
    const embedkit::PlanRequest request = embedkit::detail::plan_request_from_json(request_json);
    const embedkit::PlacementDecision decision = embedkit::plan_placement(request);
    write_text(embedkit::plan_report(request, decision, as_json != 0), "plan", buffer, capacity, length,
               {{"request_json", request_json, std::strlen(request_json) + 1}});
  });
}

ek_status ek_weights_view(ek_table* t, DLManagedTensor** out) {
  return guarded(__func__, [&] {
    table_of(t);
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the DLManagedTensor** to fill) is NULL");
    auto owner = std::make_unique<HandedView>();
    owner->table = t->table;
    owner->view = owner->table->weights_view();
    owner->shape[0] = owner->view.rows();
    owner->shape[1] = owner->view.dim();
    DLTensor& tensor = owner->managed.dl_tensor;
    tensor.data = owner->view.values().data();
    tensor.device = {kDLCPU, 0};
    tensor.ndim = 2;
    tensor.dtype = {kDLFloat, 32, 1};
    tensor.shape = owner->shape;
    owner->managed.manager_ctx = owner.get();
    owner->managed.deleter = [](DLManagedTensor* self) { delete static_cast<HandedView*>(self->manager_ctx); };
    *out = &owner.release()->managed;
  });
}

const char* ek_optimizer_state_name(ek_table* t, int index) {
  if (t == nullptr || index < 0 || static_cast<std::size_t>(index) >= t->state_names.size()) return nullptr;
  return t->state_names[static_cast<std::size_t>(index)].c_str();
}

ek_status ek_get_optimizer_state(ek_table* t, const char* name, DLTensor* out) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    EMBEDKIT_EXPECTS(name != nullptr, Status::invalid_argument, "name is NULL");
    embedkit::detail::TensorStaging staging(default_device(), table.cuda_stream());
    const auto output = staging.output(out, "out", embedkit::detail::Accept::float32);
    staging.check_outputs_apart(TableAccess::memory(table));
    const embedkit::Array<float> state = table.optimizer_state(name);
    embedkit::detail::expect_shape("out", state.shape, output.shape);
    std::memcpy(output.data, state.values.data(), state.values.size() * sizeof(float));
    staging.finish();
  });
}

ek_status ek_set_optimizer_state(ek_table* t, int64_t step, const char* const* names, const DLTensor* const* states,
                                 size_t count) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    EMBEDKIT_EXPECTS(count == 0 || (names != nullptr && states != nullptr), Status::invalid_argument,
                     "names and states must not be NULL when count is {}", count);
    embedkit::detail::TensorStaging staging(default_device(), table.cuda_stream());
    std::vector<embedkit::detail::HostTensor> inputs;
    std::vector<embedkit::NamedArray> slots;
    inputs.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      EMBEDKIT_EXPECTS(names[i] != nullptr, Status::invalid_argument, "names[{}] is NULL", i);
      inputs.push_back(staging.input(states[i], fmt::format("states[{}]", i), embedkit::detail::Accept::float32));
    }
    for (std::size_t i = 0; i < count; ++i) {
      slots.push_back({names[i],
                       std::span(static_cast<const float*>(inputs[i].data), static_cast<std::size_t>(inputs[i].size)),
                       inputs[i].shape});
    }
    embedkit::detail::check_outputs_apart(TableAccess::memory(table), staging.inputs_read());
    table.set_optimizer_state(step, slots);
    staging.finish();
  });
}

ek_status ek_sparse_grad_new(ek_table* t, const DLTensor* indices, const DLTensor* grad_out,
                             DLManagedTensor** unique_ids, DLManagedTensor** rows) {
  return ek_sparse_grad_new_on_stream(t, indices, grad_out, unique_ids, rows, nullptr);
}

ek_status ek_sparse_grad_new_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* grad_out,
                                       DLManagedTensor** unique_ids, DLManagedTensor** rows, void* stream) {
  return guarded("ek_sparse_grad_new", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    auto staging = in_place_staging();
    const auto args = embedkit::detail::train_arguments(staging, indices, grad_out, table.output_dim());
    check_sparse_grad_outputs(unique_ids, rows, staging);
    hand_out_sparse_grad(table.sparse_grad(args.ids, args.grad), unique_ids, rows);
  });
}

ek_status ek_sparse_grad_pooled_new(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                    const DLTensor* per_sample_weights, const char* mode, const DLTensor* grad_out,
                                    DLManagedTensor** unique_ids, DLManagedTensor** rows) {
  return ek_sparse_grad_pooled_new_on_stream(t, indices, offsets, per_sample_weights, mode, grad_out, unique_ids, rows,
                                             nullptr);
}

ek_status ek_sparse_grad_pooled_new_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                              const DLTensor* per_sample_weights, const char* mode,
                                              const DLTensor* grad_out, DLManagedTensor** unique_ids,
                                              DLManagedTensor** rows, void* stream) {
  return guarded("ek_sparse_grad_pooled_new", [&] {
    auto& table = table_of(t);
    const embedkit::CudaStreamScope on(stream);
    auto staging = in_place_staging();
    const auto args = embedkit::detail::pooled_train_arguments(staging, indices, offsets, per_sample_weights, mode,
                                                               grad_out, table.output_dim());
    check_sparse_grad_outputs(unique_ids, rows, staging);
    hand_out_sparse_grad(table.sparse_grad_pooled(args.pooled.ids, args.pooled.offsets, args.pooled.mode,
                                                  args.pooled.sample_weights, args.grad),
                         unique_ids, rows);
  });
}

ek_status ek_apply_sparse_grad(ek_table* t, const DLTensor* unique_ids, const DLTensor* rows) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    embedkit::detail::TensorStaging staging(default_device(), table.cuda_stream());
    const embedkit::IndexTensor ids = staging.indices(unique_ids, "unique_ids");
    EMBEDKIT_EXPECTS(ids.shape().size() == 1, Status::shape_mismatch, "unique_ids must be 1-D, got shape {}",
                     embedkit::detail::format_shape(ids.shape()));
    const auto values = staging.input(rows, "rows", embedkit::detail::Accept::float32);
    embedkit::detail::expect_shape("rows", {ids.size(), table.output_dim()}, values.shape);
    embedkit::SparseGrad grad;
    grad.dim = table.output_dim();
    grad.unique_ids.resize(static_cast<std::size_t>(ids.size()));
    embedkit::detail::with_ids(ids, [&](const auto* id) { std::copy(id, id + ids.size(), grad.unique_ids.begin()); });
    const auto* first = static_cast<const float*>(values.data);
    grad.rows.assign(first, first + values.size);
    table.apply(grad);
    staging.finish();
  });
}

}  // extern "C"
