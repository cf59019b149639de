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

namespace embedkit::detail {

/// Rows in host memory read as a table: `count` rows of `dim` floats.
struct HostRows {
  const float* data = nullptr;
  std::int64_t count = 0;
  std::int64_t dim = 0;
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
