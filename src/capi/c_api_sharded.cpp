// The C ABI of sharded tables. A tensor that fails its checks on one rank still takes that rank
// into the collective call (fail_call), so the other ranks fail with it instead of waiting.
#include <embedkit/c_api_sharded.h>
#include <embedkit/sharded_table.hpp>

#include "capi/c_api_support.hpp"
#include "capi/dlpack_view.hpp"
#include "core/expects.hpp"

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
  EMBEDKIT_EXPECTS(table != nullptr, Status::invalid_argument, "table is NULL");
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

}  // namespace

extern "C" {

int ek_sharded_available(void) { return embedkit::ShardedEmbeddingTable::available() ? 1 : 0; }

ek_status ek_sharded_create(const char* config_json, const char* split, const void* mpi_comm, ek_sharded_table** out) {
  return guarded(__func__, [&] {
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the ek_sharded_table** to fill) is NULL");
    EMBEDKIT_EXPECTS(config_json != nullptr, Status::invalid_argument, "config_json is NULL");
    *out = new ek_sharded_table{embedkit::ShardedEmbeddingTable::from_json(
        config_json, split == nullptr ? "contiguous" : split, embedkit::MpiComm{mpi_comm})};
  });
}

void ek_sharded_destroy(ek_sharded_table* table) { delete table; }

ek_status ek_sharded_world(ek_sharded_table* t, int* rank, int* world_size) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    EMBEDKIT_EXPECTS(rank != nullptr && world_size != nullptr, Status::invalid_argument, "rank or world_size is NULL");
    *rank = table.rank();
    *world_size = table.world_size();
  });
}

ek_status ek_sharded_rows(ek_sharded_table* t, int rank, int64_t* first, int64_t* stride, int64_t* count) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    EMBEDKIT_EXPECTS(first != nullptr && stride != nullptr && count != nullptr, Status::invalid_argument,
                     "first, stride or count is NULL");
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
    const auto args = prepared(table, [&] {
      auto checked = embedkit::detail::lookup_arguments(staging, indices, out, table.output_dim());
      staging.check_outputs_apart({});  // the shards' memory: checked by the lookup itself
      return checked;
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
    const auto args = prepared(table, [&] {
      auto checked = embedkit::detail::pooled_lookup_arguments(staging, indices, offsets, per_sample_weights, mode, out,
                                                               table.output_dim());
      staging.check_outputs_apart({});  // the shards' memory: checked by the lookup itself
      return checked;
    });
    table.lookup_pooled(args.pooled.ids, args.pooled.offsets, args.pooled.mode, args.pooled.sample_weights, args.out);
    staging.finish();
  });
}

ek_status ek_sharded_train_step(ek_sharded_table* t, const DLTensor* indices, const DLTensor* grad_out) {
  return guarded(__func__, [&] {
    auto& table = table_of(t);
    embedkit::detail::TensorStaging staging(embedkit::detail::c_api_device());
    const auto args = prepared(table, [&] {
      return embedkit::detail::train_arguments(staging, indices, grad_out, table.output_dim());
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
    const auto args = prepared(table, [&] {
      return embedkit::detail::pooled_train_arguments(staging, indices, offsets, per_sample_weights, mode, grad_out,
                                                      table.output_dim());
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
    EMBEDKIT_EXPECTS(out != nullptr, Status::invalid_argument, "out (the ek_sharded_table** to fill) is NULL");
    EMBEDKIT_EXPECTS(directory != nullptr, Status::invalid_argument, "directory is NULL");
    *out = new ek_sharded_table{embedkit::ShardedEmbeddingTable::load(directory, embedkit::MpiComm{mpi_comm})};
  });
}

}  // extern "C"
