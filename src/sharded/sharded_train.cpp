// ShardedEmbeddingTable train steps: every gradient row goes to its id's owner, which folds and
// applies them as the shard's own batch. Rows arrive rank by rank, each rank's in position order, so
// an owner sees each of its ids' rows in (rank, position) order: the order of the concatenated
// global batch, which the canonical fold then sums exactly as one table would.
#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>

#include "../shape.hpp"
#include "../table_impl.hpp"
#include "sharded_impl.hpp"

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
  const std::int64_t input_dim = impl.config.input_dim, padding = impl.config.padding_idx.value_or(-1);
  const auto dim = static_cast<std::size_t>(impl.config.output_dim);
  return detail::with_ids(indices, [&](const auto* ids) {
    // Ids read as zeros and padding_idx receive no gradient: they are not sent.
    const auto sent = [&](std::int64_t id) { return id >= 0 && id < input_dim && id != padding; };
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
      std::memcpy(out.rows.data() + slot * dim, grad_out.data() + static_cast<std::size_t>(p) * dim, dim * sizeof(float));
    }
    return out;
  });
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
    if (grad_out.size() != static_cast<std::size_t>(indices.size()) * static_cast<std::size_t>(dim)) {
      throw Error(Status::shape_mismatch,
                  fmt::format("grad_out must hold {} x {} floats for indices of shape {}, got {}", indices.size(), dim,
                              detail::format_shape(indices.shape()), grad_out.size()));
    }
    zero_filled = detail::check_sharded_ids(impl, indices);
    outgoing = group_by_owner(impl, indices, grad_out);
    return static_cast<std::int64_t>(outgoing.ids.size());
  }));
  const std::vector<int> recv_counts = exchange.exchange_counts(outgoing.counts);
  const std::vector<std::int64_t> ids = exchange.exchange_ids(outgoing.ids, outgoing.counts, recv_counts);
  const std::vector<float> rows = exchange.exchange_rows(outgoing.rows, outgoing.counts, recv_counts);
  // Fold everywhere first, so that a step failing on any rank (a non-finite row under
  // nonfinite_gradients "error", memory) changes no shard.
  SparseGrad grad;
  exchange.agree([&]() -> std::int64_t {
    grad = impl.shard->sparse_grad(IndexTensor(ids), rows);
    return 0;
  });
  exchange.agree([&]() -> std::int64_t {
    impl.shard->apply(grad);
    return 0;
  });
  detail::record_zero_filled(impl, zero_filled);
}

}  // namespace embedkit
