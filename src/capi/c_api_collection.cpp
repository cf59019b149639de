// The C ABI of table collections (include/embedkit/c_api_collection.h).
#include <embedkit/c_api_collection.h>
#include <embedkit/collection.hpp>
#include <embedkit/status.hpp>

#include "capi/c_api_support.hpp"
#include "capi/c_api_table.hpp"
#include "capi/dlpack_view.hpp"
#include "core/expects.hpp"
#include "core/shape.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

// Shared: a table handle of the collection keeps it alive.
struct ek_collection {
  std::shared_ptr<embedkit::TableCollection> collection;
};

namespace {

using embedkit::Status;
using embedkit::detail::Accept;
using embedkit::detail::guarded;
using embedkit::detail::TensorStaging;

embedkit::TableCollection& collection_of(const ek_collection* handle) {
  EMBEDKIT_EXPECTS(handle != nullptr, Status::invalid_argument, "collection is NULL");
  return *handle->collection;
}

// A call's batch over the caller's tensors (staged to the host when they are in device memory).
struct Batch {
  std::vector<std::string> keys;
  embedkit::KeyedJaggedBatch view{
      {}, embedkit::IndexTensor(static_cast<const std::int64_t*>(nullptr), {0}), {}, {}, {}};
};

std::span<const std::int64_t> int64_vector(TensorStaging& staging, const DLTensor* tensor, const char* name) {
  if (tensor == nullptr) return {};
  const auto host = staging.input(tensor, name, Accept::int64);
  EMBEDKIT_EXPECTS(host.shape.size() == 1, Status::shape_mismatch, "{} must be 1-D, got shape {}", name,
                   embedkit::detail::format_shape(host.shape));
  return {static_cast<const std::int64_t*>(host.data), static_cast<std::size_t>(host.size)};
}

void read_batch(Batch& batch, TensorStaging& staging, const char* const* keys, std::size_t num_keys,
                const DLTensor* values, const DLTensor* lengths, const DLTensor* offsets, const DLTensor* weights) {
  EMBEDKIT_EXPECTS(keys != nullptr || num_keys == 0, Status::invalid_argument, "keys is NULL");
  EMBEDKIT_EXPECTS(lengths != nullptr || offsets != nullptr, Status::invalid_argument,
                   "lengths and offsets are both NULL: the batch needs one of them");
  for (std::size_t k = 0; k < num_keys; ++k) {
    EMBEDKIT_EXPECTS(keys[k] != nullptr, Status::invalid_argument, "keys[{}] is NULL", k);
    batch.keys.emplace_back(keys[k]);
  }
  batch.view.keys = batch.keys;
  batch.view.values = staging.indices(values, "values");
  batch.view.lengths = int64_vector(staging, lengths, "lengths");
  batch.view.offsets = int64_vector(staging, offsets, "offsets");
  if (weights != nullptr) {
    const auto host = staging.input(weights, "weights", Accept::float32);
    embedkit::detail::expect_shape("weights", batch.view.values.shape(), host.shape);
    batch.view.weights = {static_cast<const float*>(host.data), static_cast<std::size_t>(host.size)};
  }
}

std::span<float> float_output(TensorStaging& staging, DLTensor* out, const std::vector<std::int64_t>& shape) {
  const auto host = staging.output(out, "out", Accept::float32);
  embedkit::detail::expect_shape("out", shape, host.shape);
  return {static_cast<float*>(host.data), static_cast<std::size_t>(host.size)};
}

std::span<const float> float_input(TensorStaging& staging, const DLTensor* grad,
                                   const std::vector<std::int64_t>& shape) {
  const auto host = staging.input(grad, "grad", Accept::float32);
  embedkit::detail::expect_shape("grad", shape, host.shape);
  return {static_cast<const float*>(host.data), static_cast<std::size_t>(host.size)};
}

}  // namespace

extern "C" {

ek_status ek_collection_create(const char* config_json, ek_collection** out) {
  return guarded(__func__, [&] {
    EMBEDKIT_EXPECTS(config_json != nullptr, Status::invalid_argument, "config_json is NULL");
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the ek_collection** to fill) is NULL");
    auto collection = std::make_shared<embedkit::TableCollection>(embedkit::CollectionConfig::from_json(config_json));
    *out = new ek_collection{std::move(collection)};
  });
}

void ek_collection_destroy(ek_collection* collection) { delete collection; }

ek_status ek_collection_save(const ek_collection* c, const char* directory) {
  return guarded(__func__, [&] {
    const auto& collection = collection_of(c);
    EMBEDKIT_EXPECTS(directory != nullptr, Status::invalid_argument, "directory is NULL");
    collection.save(directory);
  });
}

ek_status ek_collection_load(const char* directory, ek_collection** out) {
  return guarded(__func__, [&] {
    EMBEDKIT_EXPECTS(directory != nullptr, Status::invalid_argument, "directory is NULL");
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the ek_collection** to fill) is NULL");
    auto collection = std::make_shared<embedkit::TableCollection>(embedkit::TableCollection::load(directory));
    *out = new ek_collection{std::move(collection)};
  });
}

ek_status ek_collection_shape(const ek_collection* c, size_t* tables, int64_t* pooled_width) {
  return guarded(__func__, [&] {
    const auto& collection = collection_of(c);
    EMBEDKIT_EXPECTS(tables != nullptr && pooled_width != nullptr, Status::invalid_argument,
                     "tables and pooled_width must not be NULL");
    *tables = collection.table_count();
    *pooled_width = collection.pooled_width();
  });
}

ek_status ek_collection_table(ek_collection* c, size_t index, ek_table** out) {
  return guarded(__func__, [&] {
    auto& collection = collection_of(c);
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the ek_table** to fill) is NULL");
    EMBEDKIT_EXPECTS(index < collection.table_count(), Status::out_of_range, "table {} is not in [0, {})", index,
                     collection.table_count());
    *out = new ek_table(std::shared_ptr<embedkit::EmbeddingTable>(c->collection, &collection.table(index)));
  });
}

ek_status ek_collection_lookup_pooled(ek_collection* c, const char* const* keys, size_t num_keys,
                                      const DLTensor* values, const DLTensor* lengths, const DLTensor* offsets,
                                      const DLTensor* weights, DLTensor* out) {
  return guarded(__func__, [&] {
    const auto& collection = collection_of(c);
    TensorStaging staging(embedkit::detail::c_api_device());
    Batch batch;
    read_batch(batch, staging, keys, num_keys, values, lengths, offsets, weights);
    const std::span<float> output =
        float_output(staging, out, {collection.batch_size(batch.view), collection.pooled_width()});
    staging.check_outputs_apart({});
    collection.lookup_pooled(batch.view, output);
    staging.finish();
  });
}

ek_status ek_collection_train_step_pooled(ek_collection* c, const char* const* keys, size_t num_keys,
                                          const DLTensor* values, const DLTensor* lengths, const DLTensor* offsets,
                                          const DLTensor* weights, const DLTensor* grad) {
  return guarded(__func__, [&] {
    auto& collection = collection_of(c);
    TensorStaging staging(embedkit::detail::c_api_device());
    Batch batch;
    read_batch(batch, staging, keys, num_keys, values, lengths, offsets, weights);
    const std::span<const float> gradient =
        float_input(staging, grad, {collection.batch_size(batch.view), collection.pooled_width()});
    collection.train_step_pooled(batch.view, gradient);
  });
}

ek_status ek_collection_lookup(ek_collection* c, const char* const* keys, size_t num_keys, const DLTensor* values,
                               const DLTensor* lengths, const DLTensor* offsets, DLTensor* out) {
  return guarded(__func__, [&] {
    const auto& collection = collection_of(c);
    TensorStaging staging(embedkit::detail::c_api_device());
    Batch batch;
    read_batch(batch, staging, keys, num_keys, values, lengths, offsets, nullptr);
    const std::span<float> output = float_output(staging, out, {collection.lookup_size(batch.view)});
    staging.check_outputs_apart({});
    collection.lookup(batch.view, output);
    staging.finish();
  });
}

ek_status ek_collection_lookup_size(ek_collection* c, const char* const* keys, size_t num_keys, const DLTensor* values,
                                    const DLTensor* lengths, const DLTensor* offsets, int64_t* size) {
  return guarded(__func__, [&] {
    const auto& collection = collection_of(c);
    EMBEDKIT_EXPECTS(size != nullptr, Status::invalid_argument, "size is NULL");
    TensorStaging staging(embedkit::detail::c_api_device());
    Batch batch;
    read_batch(batch, staging, keys, num_keys, values, lengths, offsets, nullptr);
    *size = collection.lookup_size(batch.view);
  });
}

ek_status ek_collection_train_step(ek_collection* c, const char* const* keys, size_t num_keys, const DLTensor* values,
                                   const DLTensor* lengths, const DLTensor* offsets, const DLTensor* grad) {
  return guarded(__func__, [&] {
    auto& collection = collection_of(c);
    TensorStaging staging(embedkit::detail::c_api_device());
    Batch batch;
    read_batch(batch, staging, keys, num_keys, values, lengths, offsets, nullptr);
    const std::span<const float> gradient = float_input(staging, grad, {collection.lookup_size(batch.view)});
    collection.train_step(batch.view, gradient);
  });
}

}  // extern "C"
