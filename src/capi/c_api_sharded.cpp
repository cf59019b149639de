// The C ABI of sharded tables. A tensor that fails its checks on one rank still takes that rank
// into the collective call (fail_call), so the other ranks fail with it instead of waiting.
#include <embedkit/c_api_sharded.h>
#include <embedkit/sharded_table.hpp>

#include "capi/c_api_support.hpp"
#include "capi/dlpack_view.hpp"

#include <exception>
#include <new>
#include <optional>

struct ek_sharded_table {
  embedkit::ShardedEmbeddingTable table;
};

namespace {

using embedkit::Error;
using embedkit::Status;
using embedkit::detail::guarded;

embedkit::ShardedEmbeddingTable& table_of(ek_sharded_table* table) {
  if (table == nullptr) throw Error(Status::invalid_argument, "table is NULL");
  return table->table;
}

// Prepares a call's arguments with `prepare`; when that fails, this rank still joins the call,
// failing it on every rank. Returns what `prepare` made.
template <class Prepare>
auto prepared(const embedkit::ShardedEmbeddingTable& table, Prepare&& prepare) {
  std::optional<decltype(prepare())> arguments;
  std::exception_ptr thrown;
  try {
    arguments.emplace(prepare());
  } catch (...) {
    thrown = std::current_exception();
  }
  if (thrown) {
    try {
      std::rethrow_exception(thrown);
    } catch (const Error& e) {
      table.fail_call(e);
    } catch (const std::bad_alloc&) {
      table.fail_call(Error(Status::out_of_memory, "out of host memory"));
    } catch (const std::exception& e) {
      table.fail_call(Error(Status::internal, e.what()));
    } catch (...) {
      table.fail_call(Error(Status::internal, "unknown exception"));
    }
  }
  return std::move(*arguments);
}

struct LookupArguments {
  embedkit::IndexTensor ids;
  std::span<float> out;
};

struct TrainArguments {
  embedkit::IndexTensor ids;
  std::span<const float> grad;
};

struct PooledTrainArguments {
  embedkit::detail::PooledArguments pooled;
  std::span<const float> grad;
};

struct PooledOutArguments {
  embedkit::detail::PooledArguments pooled;
  std::span<float> out;
};

}  // namespace

extern "C" {

int ek_sharded_available(void) { return embedkit::ShardedEmbeddingTable::available() ? 1 : 0; }

ek_status ek_sharded_create(const char* config_json, const char* split, const void* mpi_comm, ek_sharded_table** out) {
  return guarded(__func__, [&] {
    if (out == nullptr) throw Error(Status::invalid_argument, "out (the ek_sharded_table** to fill) is NULL");
    if (config_json == nullptr) throw Error(Status::invalid_argument, "config_json is NULL");
    *out = new ek_sharded_table{embedkit::ShardedEmbeddingTable::from_json(
        config_json, split == nullptr ? "contiguous" : split, embedkit::MpiComm{mpi_comm})};
  });
}

void ek_sharded_destroy(ek_sharded_table* table) { delete table; }

ek_status ek_sharded_world(ek_sharded_table* t, int* rank, int* world_size) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    if (rank == nullptr || world_size == nullptr) throw Error(Status::invalid_argument, "rank or world_size is NULL");
    *rank = table.rank();
    *world_size = table.world_size();
  });
}

ek_status ek_sharded_rows(ek_sharded_table* t, int rank, int64_t* first, int64_t* stride, int64_t* count) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    if (first == nullptr || stride == nullptr || count == nullptr) {
      throw Error(Status::invalid_argument, "first, stride or count is NULL");
    }
    const embedkit::ShardRows rows = table.rows(rank);
    *first = rows.first;
    *stride = rows.stride;
    *count = rows.count;
  });
}

ek_status ek_sharded_lookup(ek_sharded_table* t, const DLTensor* indices, DLTensor* out) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    embedkit::detail::TensorStaging staging(embedkit::detail::c_api_device());
    const LookupArguments args = prepared(table, [&] {
      embedkit::IndexTensor ids = staging.indices(indices);
      const auto output = staging.output(out, "out", embedkit::detail::Accept::float32);
      std::vector<std::int64_t> expected = ids.shape();
      expected.push_back(table.output_dim());
      embedkit::detail::expect_shape("out", expected, output.shape);
      staging.check_outputs_apart({});  // the shards' memory: checked by the lookup itself
      return LookupArguments{std::move(ids),
                             std::span(static_cast<float*>(output.data), static_cast<std::size_t>(output.size))};
    });
    table.lookup(args.ids, args.out);
    staging.finish();
  });
}

ek_status ek_sharded_lookup_pooled(ek_sharded_table* t, const DLTensor* indices, const DLTensor* offsets,
                                   const DLTensor* per_sample_weights, const char* mode, DLTensor* out) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    embedkit::detail::TensorStaging staging(embedkit::detail::c_api_device());
    const PooledOutArguments args = prepared(table, [&] {
      embedkit::detail::PooledArguments pooled =
          embedkit::detail::pooled_arguments(staging, indices, offsets, per_sample_weights, mode);
      const auto output = staging.output(out, "out", embedkit::detail::Accept::float32);
      embedkit::detail::expect_shape("out", {pooled.bags, table.output_dim()}, output.shape);
      staging.check_outputs_apart({});  // the shards' memory: checked by the lookup itself
      return PooledOutArguments{std::move(pooled),
                                std::span(static_cast<float*>(output.data), static_cast<std::size_t>(output.size))};
    });
    table.lookup_pooled(args.pooled.ids, args.pooled.offsets, args.pooled.mode, args.pooled.sample_weights, args.out);
    staging.finish();
  });
}

ek_status ek_sharded_train_step(ek_sharded_table* t, const DLTensor* indices, const DLTensor* grad_out) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    embedkit::detail::TensorStaging staging(embedkit::detail::c_api_device());
    const TrainArguments args = prepared(table, [&] {
      embedkit::IndexTensor ids = staging.indices(indices);
      const auto grad = staging.input(grad_out, "grad_out", embedkit::detail::Accept::float32);
      std::vector<std::int64_t> expected = ids.shape();
      expected.push_back(table.output_dim());
      embedkit::detail::expect_shape("grad_out", expected, grad.shape);
      return TrainArguments{std::move(ids),
                            std::span(static_cast<const float*>(grad.data), static_cast<std::size_t>(grad.size))};
    });
    table.train_step(args.ids, args.grad);
    staging.finish();
  });
}

ek_status ek_sharded_train_step_pooled(ek_sharded_table* t, const DLTensor* indices, const DLTensor* offsets,
                                       const DLTensor* per_sample_weights, const char* mode, const DLTensor* grad_out) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    embedkit::detail::TensorStaging staging(embedkit::detail::c_api_device());
    const PooledTrainArguments args = prepared(table, [&] {
      embedkit::detail::PooledArguments pooled =
          embedkit::detail::pooled_arguments(staging, indices, offsets, per_sample_weights, mode);
      const auto grad = staging.input(grad_out, "grad_out", embedkit::detail::Accept::float32);
      embedkit::detail::expect_shape("grad_out", {pooled.bags, table.output_dim()}, grad.shape);
      return PooledTrainArguments{
          std::move(pooled), std::span(static_cast<const float*>(grad.data), static_cast<std::size_t>(grad.size))};
    });
    table.train_step_pooled(args.pooled.ids, args.pooled.offsets, args.pooled.mode, args.pooled.sample_weights,
                            args.grad);
    staging.finish();
  });
}

ek_status ek_sharded_set_learning_rate(ek_sharded_table* t, double lr) {
  return guarded(__func__, [&] { table_of(t).set_learning_rate(lr); });
}

ek_status ek_sharded_save(ek_sharded_table* t, const char* directory) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    if (directory == nullptr) table.fail_call(Error(Status::invalid_argument, "directory is NULL"));
    table.save(directory);
  });
}

ek_status ek_sharded_load(const char* directory, const void* mpi_comm, ek_sharded_table** out) {
  return guarded(__func__, [&] {
    if (out == nullptr) throw Error(Status::invalid_argument, "out (the ek_sharded_table** to fill) is NULL");
    if (directory == nullptr) throw Error(Status::invalid_argument, "directory is NULL");
    *out = new ek_sharded_table{embedkit::ShardedEmbeddingTable::load(directory, embedkit::MpiComm{mpi_comm})};
  });
}

}  // extern "C"
