#pragma once
// C++17, host and device. The pooled lookup's per-thread body: a group of lanes per bag, each lane
// owning column units u = lane, lane + lanes, ... of one column (scalar path) or four columns
// loaded and stored as one 16-byte vector (dim % 4 == 0 and aligned matrices). Each column
// accumulates in a register, left to right in position order, with the arithmetic of
// include/embedkit/detail/pooling_math.hpp, as the CPU does, so both paths give the CPU's bits.
// The same pass raises the bounds check's flag and, for max, records each column's argmax (the
// entry detail::replaces_pick keeps, as the CPU's pooled_argmax does) for the backward. The
// __global__ wrapper is in pooled.cu; tests run this body for every coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/id_range.hpp>
#include <embedkit/detail/pooled_batch.hpp>
#include <embedkit/detail/pooling_math.hpp>

#include "gather_kernel.hpp"
#include "launch_plan.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// Launch shape of a pooled lookup: a group of lanes per bag, planned as a gather's rows are
/// (16-byte vectors when dim % 4 == 0 and the matrices are aligned).
using PooledPlan = GatherPlan;

/// Plans `bags` bags of rows of `dim` floats; `aligned` says weights and output are 16-byte aligned.
EK_HOST_DEVICE inline PooledPlan plan_pooled(std::int64_t bags, std::int64_t dim, bool aligned) {
  return plan_gather(bags, dim, aligned);
}

/// Arguments of one pooled lookup (see cpu/pooled.hpp for the semantics).
template <class Index>
struct PooledArgs {
  const float* weights;
  std::int64_t input_dim;
  std::int64_t dim;
  detail::PooledBatch<Index> batch;
  float* out;                  ///< (bags, dim)
  unsigned int* out_of_range;  ///< NULL, or set to 1 when any id is outside [0, input_dim)
  std::int64_t* argmax;        ///< NULL, or (bags, dim) for a mode that picks entries (max): the
                               ///< position of each column's pick, -1 for a bag with no counted entry
};

/// Columns [c, c + Width) of bag `bag`: Width is 1 (scalar) or 4 (one 16-byte vector).
template <int Width, class Index>
EK_HOST_DEVICE inline void pool_columns(std::int64_t bag, std::int64_t c, const PooledArgs<Index>& a) {
  const detail::PooledBatch<Index>& b = a.batch;
  // The bag's statistics in the same pass as its sum: PooledBatch::denominator's loop, fused.
  detail::BagStats stats;
  float pooled[Width] = {};
  std::int64_t best[Width];
  for (int k = 0; k < Width; ++k) best[k] = -1;
  const bool picks = detail::picks_entry(b.mode);
  for (std::int64_t j = b.offsets[bag]; j < b.offsets[bag + 1]; ++j) {
    if (!b.counted(j)) continue;  // padding first, so an id outside the table is never padding
    const std::int64_t id = b.id(j);
    const float w = b.weight(j);
    stats.add(w);
    const bool in_range = detail::id_in_range(id, a.input_dim);
    if (!in_range && a.out_of_range != nullptr) *a.out_of_range = 1u;  // every writer stores the same value
    float v[Width] = {};
    if (in_range) {
      if constexpr (Width == 4) {
        const Float4 row = *reinterpret_cast<const Float4*>(a.weights + id * a.dim + c);
        v[0] = row.x, v[1] = row.y, v[2] = row.z, v[3] = row.w;
      } else {
        v[0] = a.weights[id * a.dim + c];
      }
    }
    for (int k = 0; k < Width; ++k) {
      if (picks) {
        if (detail::replaces_pick(b.mode, v[k], pooled[k], best[k] < 0)) {
          pooled[k] = v[k];
          best[k] = j;
        }
      } else if (in_range) {
        pooled[k] += b.sample_weights != nullptr ? w * v[k] : v[k];
      }
    }
  }
  const float denominator = detail::pool_denominator(b.mode, stats);
  float result[Width];
  for (int k = 0; k < Width; ++k) {
    result[k] = denominator != 1.0f ? detail::pool_finish(pooled[k], denominator) : pooled[k];
  }
  if constexpr (Width == 4) {
    *reinterpret_cast<Float4*>(a.out + bag * a.dim + c) = Float4{result[0], result[1], result[2], result[3]};
  } else {
    a.out[bag * a.dim + c] = result[0];
  }
  if (a.argmax != nullptr) {
    for (int k = 0; k < Width; ++k) a.argmax[bag * a.dim + c + k] = best[k];
  }
}

/// The work of thread `thread` of block `block`.
template <class Index>
EK_HOST_DEVICE inline void pooled_body(std::int64_t block, int thread, const PooledPlan& plan,
                                       const PooledArgs<Index>& a) {
  const int lanes = plan.groups.lanes;
  const std::int64_t bag = block * plan.groups.groups_per_block + thread / lanes;
  if (bag >= a.batch.bags) return;
  const int lane = thread % lanes;
  if (plan.vectorized) {
    for (std::int64_t u = lane; u < a.dim / 4; u += lanes) pool_columns<4>(bag, 4 * u, a);
  } else {
    for (std::int64_t c = lane; c < a.dim; c += lanes) pool_columns<1>(bag, c, a);
  }
}

}  // namespace embedkit::kernels
