#pragma once
// C++17, host and device. A pooled batch as every layer below the table takes it: the CPU loops
// (cpu/pooled*, the CPU backend's fold), the CUDA kernels' arguments (kernels/pooled*_kernel.hpp)
// and the table layer's host work (src/backend/host_ops.hpp). It says which entries a bag holds,
// which of them count and with what weight, and so what each bag is divided by: the rule exists
// here once, for the CPU and the kernels alike.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/padding.hpp>
#include <embedkit/detail/pooling_math.hpp>
#include <embedkit/pooling.hpp>

#include <cstdint>

namespace embedkit::detail {

/// Bag b holds the entries at positions offsets[b] .. offsets[b+1] of `ids` (CSR: offsets[0] = 0,
/// non-decreasing, bags + 1 of them). Entries whose id is `padding` are skipped and not counted;
/// the others count with weight sample_weights[j] (1 when NULL). All pointers are in the memory
/// of whoever reads them (host or device); the struct itself is copied by value into kernels.
template <class Index>
struct PooledBatch {
  const Index* ids = nullptr;             ///< offsets[bags] entries
  const std::int64_t* offsets = nullptr;  ///< bags + 1
  std::int64_t bags = 0;
  const float* sample_weights = nullptr;  ///< one per entry, or NULL: all ones
  PoolingMode mode = PoolingMode::sum;
  Padding padding;

  EK_HOST_DEVICE std::int64_t entries() const { return offsets[bags]; }
  EK_HOST_DEVICE std::int64_t id(std::int64_t j) const { return static_cast<std::int64_t>(ids[j]); }
  /// Whether entry j counts (is not padding); an id outside the table counts, as a row of zeros.
  EK_HOST_DEVICE bool counted(std::int64_t j) const { return !padding.is(id(j)); }
  /// Entry j's weight.
  EK_HOST_DEVICE float weight(std::int64_t j) const { return sample_weights != nullptr ? sample_weights[j] : 1.0f; }

  /// What bag `bag`'s weighted sum is divided by (pool_denominator over its counted entries, in
  /// position order); 0: the bag pools to zeros.
  EK_HOST_DEVICE float denominator(std::int64_t bag) const {
    BagStats stats;
    for (std::int64_t j = offsets[bag]; j < offsets[bag + 1]; ++j) {
      if (counted(j)) stats.add(weight(j));
    }
    return pool_denominator(mode, stats);
  }

  /// What entry j receives of its bag's gradient in a summing mode, given the bag's `denominator`.
  EK_HOST_DEVICE float entry_scale(std::int64_t j, float denominator) const {
    return detail::entry_scale(counted(j), weight(j), denominator);
  }
};

/// A PooledBatch whose Index is that of `ids` (for the callers that hold typed ids as `auto`).
template <class Index>
EK_HOST_DEVICE PooledBatch<Index> pooled_batch(const Index* ids, const std::int64_t* offsets, std::int64_t bags,
                                               const float* sample_weights, PoolingMode mode, Padding padding) {
  return {ids, offsets, bags, sample_weights, mode, padding};
}

}  // namespace embedkit::detail
