// ShardedEmbeddingTable train steps: every gradient row goes to its id's owner, which folds and
// applies them as the shard's own batch. Rows arrive rank by rank, each rank's in position order, so
// an owner sees each of its ids' rows in (rank, position) order: the order of the concatenated
// global batch, which the canonical fold then sums exactly as one table would.
#include <embedkit/detail/pooling_math.hpp>
#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>

#include "core/ids.hpp"
#include "core/shape.hpp"
#include "sharded/sharded_impl.hpp"
#include "table/pooled_entry_gradients.hpp"
#include "table/table_access.hpp"
#include "table/table_impl.hpp"

#include <fmt/format.h>

#include <cstring>

namespace embedkit {
namespace {

using Impl = ShardedEmbeddingTable::Impl;

// This rank's gradient rows grouped by owner, each group in position order, with shard-local ids.
struct OutgoingRows {
  std::vector<std::int64_t> ids;
  std::vector<float> rows;
  std::vector<int> counts;  // per owner
};

OutgoingRows group_by_owner(const Impl& impl, const IndexTensor& indices, std::span<const float> grad_out) {
  const detail::RowLayout& layout = *impl.layout;
  const std::int64_t input_dim = impl.config.input_dim;
  const detail::Padding padding = detail::padding_of(impl.config);
  const auto dim = static_cast<std::size_t>(impl.config.output_dim);
  return detail::with_ids(indices, [&](const auto* ids) {
    // Ids read as zeros and padding_idx receive no gradient: they are not sent.
    const auto sent = [&](std::int64_t id) { return id >= 0 && id < input_dim && !padding.is(id); };
    OutgoingRows out;
    out.counts.assign(static_cast<std::size_t>(layout.world()), 0);
    for (std::int64_t p = 0; p < indices.size(); ++p) {
      const auto id = static_cast<std::int64_t>(ids[p]);
      if (sent(id)) ++out.counts[static_cast<std::size_t>(layout.owner(id))];
    }
    std::vector<std::size_t> next(out.counts.size(), 0);
    for (std::size_t r = 1; r < next.size(); ++r) next[r] = next[r - 1] + static_cast<std::size_t>(out.counts[r - 1]);
    out.ids.resize(next.back() + static_cast<std::size_t>(out.counts.back()));
    out.rows.resize(out.ids.size() * dim);
    for (std::int64_t p = 0; p < indices.size(); ++p) {
      const auto id = static_cast<std::int64_t>(ids[p]);
      if (!sent(id)) continue;
      const std::size_t slot = next[static_cast<std::size_t>(layout.owner(id))]++;
      out.ids[slot] = layout.local(id);
      std::memcpy(out.rows.data() + slot * dim, grad_out.data() + static_cast<std::size_t>(p) * dim,
                  dim * sizeof(float));
    }
    return out;
  });
}

// Collective: sends every rank's outgoing rows to their owners, which fold them as the shard's own
// batch, everywhere first, so that a step failing on any rank (a non-finite row under
// nonfinite_gradients "error", memory) changes no shard; then applies them.
void exchange_and_apply(Impl& impl, const OutgoingRows& outgoing) {
  detail::MpiExchange& exchange = *impl.exchange;
  const std::vector<int> recv_counts = exchange.exchange_counts(outgoing.counts);
  const std::vector<std::int64_t> ids = exchange.exchange_ids(outgoing.ids, outgoing.counts, recv_counts);
  const std::vector<float> rows = exchange.exchange_rows(outgoing.rows, outgoing.counts, recv_counts);
  SparseGrad grad;
  exchange.agree([&]() -> std::int64_t {
    grad = impl.shard->sparse_grad(IndexTensor(ids), rows);
    return 0;
  });
  // Applying a folded, checked gradient can only fail to allocate (a device shard short of memory):
  // then the ranks that did apply keep their step, and every rank reports the failure.
  exchange.agree([&]() -> std::int64_t {
    impl.shard->apply(grad);
    return 0;
  });
}

// Refuses a step whose inputs overlap this rank's shard, which the step writes (memory_overlap.hpp).
void check_inputs_apart_from_shard(const Impl& impl, std::span<const detail::NamedBytes> inputs) {
  detail::check_outputs_apart(detail::TableAccess::memory(*impl.shard), inputs);
}

}  // namespace

void ShardedEmbeddingTable::train_step(const IndexTensor& indices, std::span<const float> grad_out) {
  Impl& impl = *impl_;
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::CallScope call(exchange);
  const std::int64_t dim = impl.config.output_dim;
  std::int64_t zero_filled = 0;
  OutgoingRows outgoing;
  detail::check_exchange_size(exchange, exchange.agree([&] {
    detail::expect_floats("grad_out", grad_out.size(), indices, dim);
    const detail::NamedBytes inputs[] = {{"indices", indices.data(), detail::index_bytes(indices)},
                                         {"grad_out", grad_out.data(), grad_out.size_bytes()}};
    check_inputs_apart_from_shard(impl, inputs);
    zero_filled = detail::check_sharded_ids(impl, indices);
    outgoing = group_by_owner(impl, indices, grad_out);
    return static_cast<std::int64_t>(outgoing.ids.size());
  }));
  exchange_and_apply(impl, outgoing);
  detail::record_zero_filled(impl, zero_filled);
}

void ShardedEmbeddingTable::train_step_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                              PoolingMode mode, std::span<const float> per_sample_weights,
                                              std::span<const float> grad_bags) {
  Impl& impl = *impl_;
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::CallScope call(exchange);
  const std::int64_t dim = impl.config.output_dim;
  std::int64_t zero_filled = 0, bags = 0;
  detail::CompactRows read;
  detail::check_exchange_size(exchange, exchange.agree([&] {
    bags = detail::check_pooled_arguments(indices, offsets, mode, per_sample_weights);
    detail::expect_floats("grad_bags", grad_bags.size(), bags, dim, "bags");
    const detail::NamedBytes inputs[] = {{"indices", indices.data(), detail::index_bytes(indices)},
                                         {"offsets", offsets.data(), offsets.size_bytes()},
                                         {"per_sample_weights", per_sample_weights.data(),
                                          per_sample_weights.size_bytes()},
                                         {"grad_bags", grad_bags.data(), grad_bags.size_bytes()}};
    check_inputs_apart_from_shard(impl, inputs);
    zero_filled = detail::check_sharded_ids(impl, indices);
    if (detail::picks_entry(mode)) {
      read.ids = detail::distinct_in_range(indices, impl.config.input_dim);
    }
    return indices.size();
  }));
  // Max needs the rows its entries read, from their owners; every rank takes part in the fetch
  // when any rank pools by max (the others fetch nothing).
  const bool any_max = exchange.agree([&]() -> std::int64_t { return detail::picks_entry(mode) ? 1 : 0; }) != 0;
  if (any_max) read.rows = detail::fetch_rows(impl, read.ids);
  // Each entry's gradient row, then the step of a plain batch of those rows: the same bits as one
  // table's pooled step, whose fold sums exactly these values.
  const std::vector<float> entry_rows = detail::with_ids(indices, [&](const auto* ids) {
    return detail::pooled_entry_gradients(ids, indices.size(), offsets, bags, mode, per_sample_weights, grad_bags, dim,
                                          detail::padding_of(impl.config), read);
  });
  exchange_and_apply(impl, group_by_owner(impl, indices, entry_rows));
  detail::record_zero_filled(impl, zero_filled);
}

}  // namespace embedkit
