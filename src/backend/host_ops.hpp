#pragma once
// What the table layer computes in host memory whichever backend holds a table: the check of a
// caller's ids, Keras's mask, a row a host callback changed, and the pooled work of rows brought to
// the host (sharded tables; a pooled step retried in chunks). The CPU backend implements it with its
// OpenMP loops; src/ reaches it through backends.hpp's host_ops(), never through cpu/ directly.

#include <embedkit/config.hpp>
#include <embedkit/detail/padding.hpp>
#include <embedkit/detail/pooled_batch.hpp>

#include "backend/backend.hpp"

#include <cstdint>
#include <span>

namespace embedkit::detail {

/// Rows in host memory read as a table: `count` rows of `dim` floats.
struct HostRows {
  const float* data = nullptr;
  std::int64_t count = 0;
  std::int64_t dim = 0;
};

/// One table's share of a many-table pooled lookup: its rows, its bags, and where bag b goes
/// (out + b·out_stride, rows.dim floats: a column block of a wider matrix, or rows of their own).
template <class Index>
struct PooledJob {
  HostRows rows;
  PooledBatch<Index> batch;
  float* out = nullptr;
  std::int64_t out_stride = 0;
};

class HostOps {
 public:
  virtual ~HostOps() = default;
  /// How many of `ids` lie outside [0, input_dim), and the first of them by position.
  virtual IdCheck scan_ids(const DeviceIds& ids, std::int64_t input_dim) = 0;
  /// mask[i] = 1 where ids[i] != 0, 0 where it is 0.
  virtual void nonzero_mask(const DeviceIds& ids, std::uint8_t* mask) = 0;
  /// Applies `constraint` to one row of `dim` weights.
  virtual void constrain_row(float* row, std::int64_t dim, const Constraint& constraint) = 0;
  // The pooled work takes a batch in host memory (detail::PooledBatch), with int32 or int64 ids.

  /// Pools the bags of `batch` over `rows` into out (batch.bags × rows.dim); ids outside the rows
  /// read as zeros.
  virtual void pooled(const HostRows& rows, const PooledBatch<std::int32_t>& batch, float* out) = 0;
  virtual void pooled(const HostRows& rows, const PooledBatch<std::int64_t>& batch, float* out) = 0;
  /// pooled for every job (the features of one batch: each job has one bag per sample, the same
  /// number), in one parallel region whose work is split by bytes across the jobs (a table
  /// collection's call); each job's results are bitwise pooled's. Jobs may share rows.
  virtual void pooled_many(std::span<const PooledJob<std::int32_t>> jobs) = 0;
  virtual void pooled_many(std::span<const PooledJob<std::int64_t>> jobs) = 0;
  /// What each entry of a sum, mean or sqrtn batch receives of its bag's gradient (scales[p]), and
  /// its bag (bag_of[p]); padding entries receive 0.
  virtual void pooled_entry_scales(const PooledBatch<std::int32_t>& batch, float* scales, std::int64_t* bag_of) = 0;
  virtual void pooled_entry_scales(const PooledBatch<std::int64_t>& batch, float* scales, std::int64_t* bag_of) = 0;
  /// For max: argmax[b·dim + c] = the first position of bag b holding the maximum of column c of
  /// `rows`, or -1 for an empty bag.
  virtual void pooled_argmax(const HostRows& rows, const PooledBatch<std::int32_t>& batch, std::int64_t* argmax) = 0;
  virtual void pooled_argmax(const HostRows& rows, const PooledBatch<std::int64_t>& batch, std::int64_t* argmax) = 0;
};

}  // namespace embedkit::detail
