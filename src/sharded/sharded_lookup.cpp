// ShardedEmbeddingTable lookups: each rank's distinct ids go to their owners, which gather the rows
// and send them back; pooled bags are then reduced at the requester, in position order.
#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>

#include "backend/backends.hpp"
#include "core/ids.hpp"
#include "core/shape.hpp"
#include "sharded/sharded_impl.hpp"
#include "table/table_access.hpp"
#include "table/table_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace embedkit {
namespace {

using Impl = ShardedEmbeddingTable::Impl;

}  // namespace

namespace detail {

std::vector<float> fetch_rows(const ShardedEmbeddingTable::Impl& impl, const std::vector<std::int64_t>& ids) {
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::RowLayout& layout = *impl.layout;
  const auto world = static_cast<std::size_t>(exchange.size());
  const auto dim = static_cast<std::size_t>(impl.config.output_dim);
  std::vector<int> send_counts(world, 0);
  for (const std::int64_t id : ids) ++send_counts[static_cast<std::size_t>(layout.owner(id))];
  std::vector<int> next(world, 0);  // where each owner's ids start in `requests`
  for (std::size_t r = 1; r < world; ++r) next[r] = next[r - 1] + send_counts[r - 1];
  std::vector<std::int64_t> requests(ids.size());
  std::vector<std::size_t> request_of(ids.size());  // ids[k]'s place in `requests`
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const auto owner = static_cast<std::size_t>(layout.owner(ids[k]));
    request_of[k] = static_cast<std::size_t>(next[owner]++);
    requests[request_of[k]] = layout.local(ids[k]);
  }
  const std::vector<int> recv_counts = exchange.exchange_counts(send_counts);
  const std::vector<std::int64_t> asked = exchange.exchange_ids(requests, send_counts, recv_counts);
  std::vector<float> served(asked.size() * dim);
  exchange.agree([&]() -> std::int64_t {
    impl.shard->lookup(IndexTensor(asked), served);
    return 0;
  });
  const std::vector<float> answers = exchange.exchange_rows(served, recv_counts, send_counts);
  std::vector<float> rows(ids.size() * dim);
  for (std::size_t k = 0; k < ids.size(); ++k) {
    std::memcpy(rows.data() + k * dim, answers.data() + request_of[k] * dim, dim * sizeof(float));
  }
  return rows;
}

}  // namespace detail

namespace {

// Refuses `out` over one of the call's inputs or this rank's shard (memory_overlap.hpp).
void check_out_apart(const Impl& impl, std::span<float> out, std::vector<detail::NamedBytes> inputs) {
  std::vector<detail::NamedBytes> shard = detail::TableAccess::memory(*impl.shard);
  inputs.insert(inputs.end(), shard.begin(), shard.end());
  const detail::NamedBytes output{"out", out.data(), out.size_bytes()};
  detail::check_outputs_apart(std::span(&output, 1), inputs);
}

}  // namespace

Array<float> ShardedEmbeddingTable::lookup(const IndexTensor& indices) const {
  Array<float> out = detail::lookup_output(indices, output_dim());
  lookup(indices, out.values);
  return out;
}

void ShardedEmbeddingTable::lookup(const IndexTensor& indices, std::span<float> out) const {
  Impl& impl = *impl_;
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::CallScope call(exchange);
  const std::int64_t dim = impl.config.output_dim;
  std::int64_t zero_filled = 0;
  detail::DistinctIds distinct;
  detail::check_exchange_size(exchange, exchange.agree([&] {
    detail::expect_floats("lookup output", out.size(), indices, dim);
    check_out_apart(impl, out, {{"indices", indices.data(), detail::index_bytes(indices)}});
    zero_filled = detail::check_sharded_ids(impl, indices);
    distinct = detail::distinct_ids(indices, impl.config.input_dim);
    return static_cast<std::int64_t>(distinct.ids.size());
  }));
  const std::vector<float> rows = detail::fetch_rows(impl, distinct.ids);
  for (std::size_t p = 0; p < distinct.slot_of.size(); ++p) {
    float* target = out.data() + p * static_cast<std::size_t>(dim);
    const std::int64_t slot = distinct.slot_of[p];
    if (slot < 0) {
      std::fill_n(target, dim, 0.0f);
    } else {
      std::copy_n(rows.data() + slot * dim, dim, target);
    }
  }
  detail::record_zero_filled(impl, zero_filled);
}

Array<float> ShardedEmbeddingTable::lookup_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                                  PoolingMode mode, std::span<const float> per_sample_weights) const {
  Array<float> out = detail::pooled_output(offsets, output_dim());
  lookup_pooled(indices, offsets, mode, per_sample_weights, out.values);
  return out;
}

void ShardedEmbeddingTable::lookup_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets,
                                          PoolingMode mode, std::span<const float> per_sample_weights,
                                          std::span<float> out) const {
  Impl& impl = *impl_;
  detail::MpiExchange& exchange = *impl.exchange;
  const detail::CallScope call(exchange);
  const std::int64_t dim = impl.config.output_dim;
  std::int64_t zero_filled = 0, bags = 0;
  detail::DistinctIds distinct;
  detail::check_exchange_size(exchange, exchange.agree([&] {
    bags = detail::check_pooled_arguments(indices, offsets, mode, per_sample_weights);
    detail::expect_floats("pooled output", out.size(), bags, dim);
    check_out_apart(impl, out,
                    {{"indices", indices.data(), detail::index_bytes(indices)},
                     {"offsets", offsets.data(), offsets.size_bytes()},
                     {"per_sample_weights", per_sample_weights.data(), per_sample_weights.size_bytes()}});
    zero_filled = detail::check_sharded_ids(impl, indices);
    distinct = detail::distinct_ids(indices, impl.config.input_dim);
    return static_cast<std::int64_t>(distinct.ids.size());
  }));
  const std::vector<float> rows = detail::fetch_rows(impl, distinct.ids);
  // The bags over the fetched rows: entry j reads row slot_of[j], an id outside the table a row
  // past them (zeros), and padding_idx keeps its meaning through its slot.
  const auto fetched = static_cast<std::int64_t>(distinct.ids.size());
  std::vector<std::int64_t> slots(distinct.slot_of.size());
  for (std::size_t j = 0; j < slots.size(); ++j) slots[j] = distinct.slot_of[j] < 0 ? fetched : distinct.slot_of[j];
  detail::Padding padding_slot;
  if (impl.config.padding_idx) {
    const std::int64_t at = detail::slot_in(distinct.ids, *impl.config.padding_idx);
    if (at >= 0) padding_slot = {true, at};
  }
  detail::host_ops().pooled({rows.data(), fetched, dim},
                            detail::PooledBatch<std::int64_t>{
                                slots.data(), offsets.data(), bags,
                                per_sample_weights.empty() ? nullptr : per_sample_weights.data(), mode, padding_slot},
                            out.data());
  detail::record_zero_filled(impl, zero_filled);
}

}  // namespace embedkit
