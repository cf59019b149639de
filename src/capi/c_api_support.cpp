#include "capi/c_api_support.hpp"

#include "core/expects.hpp"
#include "core/shape.hpp"
#include "placement/context_impl.hpp"

namespace embedkit::detail {

std::string& c_api_last_error() {
  thread_local std::string last_error;
  return last_error;
}

Backend* c_api_device() { return Context::default_context().impl().device.get(); }

PooledArguments pooled_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* offsets,
                                 const DLTensor* per_sample_weights, const char* mode) {
  EMBEDKIT_EXPECTS(mode != nullptr, Status::invalid_argument, "mode is NULL");
  const PoolingMode pooling = parse_pooling_mode(mode);
  IndexTensor ids = staging.indices(indices);
  const auto csr = staging.input(offsets, "offsets", Accept::int64);
  EMBEDKIT_EXPECTS(csr.shape.size() == 1, Status::shape_mismatch, "offsets must be 1-D, got shape {}",
                   format_shape(csr.shape));
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

LookupArguments lookup_arguments(TensorStaging& staging, const DLTensor* indices, DLTensor* out, std::int64_t dim) {
  IndexTensor ids = staging.indices(indices);
  const auto output = staging.output(out, "out", Accept::float32);
  expect_shape("out", lookup_shape(ids.shape(), dim), output.shape);
  return {std::move(ids), std::span(static_cast<float*>(output.data), static_cast<std::size_t>(output.size))};
}

TrainArguments train_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* grad_out,
                               std::int64_t dim) {
  IndexTensor ids = staging.indices(indices);
  const auto grad = staging.input(grad_out, "grad_out", Accept::float32);
  expect_shape("grad_out", lookup_shape(ids.shape(), dim), grad.shape);
  return {std::move(ids), std::span(static_cast<const float*>(grad.data), static_cast<std::size_t>(grad.size))};
}

PooledLookupArguments pooled_lookup_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* offsets,
                                              const DLTensor* per_sample_weights, const char* mode, DLTensor* out,
                                              std::int64_t dim) {
  PooledArguments pooled = pooled_arguments(staging, indices, offsets, per_sample_weights, mode);
  const auto output = staging.output(out, "out", Accept::float32);
  expect_shape("out", {pooled.bags, dim}, output.shape);
  return {std::move(pooled), std::span(static_cast<float*>(output.data), static_cast<std::size_t>(output.size))};
}

PooledTrainArguments pooled_train_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* offsets,
                                            const DLTensor* per_sample_weights, const char* mode,
                                            const DLTensor* grad_out, std::int64_t dim) {
  PooledArguments pooled = pooled_arguments(staging, indices, offsets, per_sample_weights, mode);
  const auto grad = staging.input(grad_out, "grad_out", Accept::float32);
  expect_shape("grad_out", {pooled.bags, dim}, grad.shape);
  return {std::move(pooled), std::span(static_cast<const float*>(grad.data), static_cast<std::size_t>(grad.size))};
}

}  // namespace embedkit::detail
