#include "capi/c_api_support.hpp"

#include "placement/context_impl.hpp"
#include "core/shape.hpp"

namespace embedkit::detail {

std::string& c_api_last_error() {
  thread_local std::string last_error;
  return last_error;
}

Backend* c_api_device() { return Context::default_context().impl().device.get(); }

PooledArguments pooled_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* offsets,
                                 const DLTensor* per_sample_weights, const char* mode) {
  if (mode == nullptr) throw Error(Status::invalid_argument, "mode is NULL");
  const PoolingMode pooling = parse_pooling_mode(mode);
  IndexTensor ids = staging.indices(indices);
  const auto csr = staging.input(offsets, "offsets", Accept::int64);
  if (csr.shape.size() != 1) {
    throw Error(Status::shape_mismatch, "offsets must be 1-D, got shape " + format_shape(csr.shape));
  }
  std::span<const float> sample_weights;
  if (per_sample_weights != nullptr) {
    const auto w = staging.input(per_sample_weights, "per_sample_weights", Accept::float32);
    expect_shape("per_sample_weights", ids.shape(), w.shape);
    sample_weights = std::span(static_cast<const float*>(w.data), static_cast<std::size_t>(w.size));
  }
  return PooledArguments{std::move(ids),
                         std::span(static_cast<const std::int64_t*>(csr.data), static_cast<std::size_t>(csr.size)),
                         sample_weights, pooling, csr.size > 0 ? csr.size - 1 : 0};
}

}  // namespace embedkit::detail
