// EmbeddingTable::lookup_pooled: bags of rows combined by sum, mean, max or sqrtn.
#include <embedkit/detail/pooling_math.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include "backend/staging.hpp"
#include "core/expects.hpp"
#include "core/offsets.hpp"
#include "core/shape.hpp"
#include "table/table_impl.hpp"

#include <fmt/format.h>

#include <mutex>
#include <vector>

namespace embedkit {

namespace detail {

std::int64_t check_pooled_arguments(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                                    std::span<const float> per_sample_weights) {
  EMBEDKIT_EXPECTS(indices.shape().size() == 1, Status::shape_mismatch,
                   "pooled lookup indices must be 1-D, got shape {}", format_shape(indices.shape()));
  check_offsets(offsets, indices.size());
  EMBEDKIT_EXPECTS(per_sample_weights.empty() || !picks_entry(mode), Status::invalid_argument,
                   "per_sample_weights are not supported with pooling mode '{}'", to_string(mode));
  EMBEDKIT_EXPECTS(per_sample_weights.empty() || per_sample_weights.size() == static_cast<std::size_t>(indices.size()),
                   Status::shape_mismatch, "per_sample_weights shape must be ({},), the shape of indices, got ({},)",
                   indices.size(), per_sample_weights.size());
  return static_cast<std::int64_t>(offsets.size()) - 1;
}

}  // namespace detail

Array<float> EmbeddingTable::lookup_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                           PoolingMode mode, std::span<const float> per_sample_weights) const {
  Array<float> out = detail::pooled_output(offsets, output_dim());
  lookup_pooled(indices, offsets, mode, per_sample_weights, out.values);
  return out;
}

void EmbeddingTable::lookup_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                                   std::span<const float> per_sample_weights, std::span<float> out) const {
  const TableConfig& config = impl_->config;
  const detail::LookupLock lock(*impl_);  // alone under max_norm, which writes the rows it reads
  // Where the offsets are depends on where the table is: read under its lock.
  std::vector<std::int64_t> offsets_copy;  // offsets in device memory are checked from a host copy
  const std::int64_t bags = detail::check_pooled_arguments(
      indices, detail::on_host(impl_->call_memory(), offsets, offsets_copy), mode, per_sample_weights);
  const bool weighted = !per_sample_weights.empty();
  detail::expect_floats("pooled output", out.size(), bags, config.output_dim);
  detail::check_output_apart(*impl_, {"out", out.data(), out.size_bytes()},
                             {{"indices", indices.data(), detail::index_bytes(indices)},
                              {"offsets", offsets.data(), offsets.size_bytes()},
                              {"per_sample_weights", per_sample_weights.data(), per_sample_weights.size_bytes()}});
  const detail::CallStream on(*impl_, {{indices.data(), detail::index_bytes(indices)},
                                       {offsets.data(), offsets.size_bytes()},
                                       {per_sample_weights.data(), per_sample_weights.size_bytes()},
                                       {out.data(), out.size_bytes()}});
  detail::IdsCheck check(*impl_, indices);
  detail::Staging staging(impl_->call_memory());
  const detail::DeviceIds ids{staging.in(indices.data(), detail::index_bytes(indices), "pooled ids"), indices.type(),
                              indices.size()};
  const auto* device_offsets =
      static_cast<const std::int64_t*>(staging.in(offsets.data(), offsets.size_bytes(), "pooled offsets"));
  const auto* device_weights =
      weighted ? static_cast<const float*>(
                     staging.in(per_sample_weights.data(), per_sample_weights.size_bytes(), "per-sample weights"))
               : nullptr;
  float* device_out = static_cast<float*>(staging.out(out.data(), out.size_bytes(), "pooled output"));
  detail::renorm_looked_up(*impl_, check, ids);
  impl_->backend->pooled(impl_->view(), ids, device_offsets, bags, device_weights, mode, device_out, check.report());
  const detail::ZeroFilled filled = check.result();
  staging.finish();
  detail::record_zero_filled(*impl_, filled);
}

}  // namespace embedkit
