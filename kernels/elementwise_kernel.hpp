#pragma once
// C++17, host and device. The table operations that touch elements independently: the
// initializer's fill and a constant fill (launched with kElementBlockThreads threads per block),
// and the non-finite scan of gradient rows (a lane group per row). Tests run the bodies for every
// coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/init_sampler.hpp>
#include <embedkit/detail/optimizer_math.hpp>

#include "gather_kernel.hpp"
#include "launch_plan.hpp"

#include <cmath>
#include <cstdint>

namespace embedkit::kernels {

constexpr int kElementBlockThreads = 256;

EK_HOST_DEVICE inline std::int64_t element_index(std::int64_t block, int thread) {
  return block * kElementBlockThreads + thread;
}

/// weights[i] = the initializer's value at (row, column) of element i: the CPU's matrix, bit for bit
/// up to the device's libm (uniform and constants are exact; normals agree within an ulp or two).
struct FillInitialArgs {
  float* weights;
  std::int64_t rows;
  std::int64_t dim;
  detail::InitSampler sampler;
  std::uint64_t seed;
};

EK_HOST_DEVICE inline void fill_initial_body(std::int64_t block, int thread, const FillInitialArgs& a) {
  const std::int64_t i = element_index(block, thread);
  if (i >= a.rows * a.dim) return;
  a.weights[i] = detail::init_value(a.sampler, a.seed, static_cast<std::uint64_t>(i / a.dim),
                                    static_cast<std::uint32_t>(i % a.dim));
}

struct FillArgs {
  float* data;
  std::int64_t count;
  float value;
};

EK_HOST_DEVICE inline void fill_body(std::int64_t block, int thread, const FillArgs& a) {
  const std::int64_t i = element_index(block, thread);
  if (i < a.count) a.data[i] = a.value;
}

/// The non-finite scan of gradient rows: skip[u] = 2 for a row, not already skipped, holding NaN
/// or infinity (counting happens afterwards, on the flags). A lane group per row, as plan_groups
/// sizes it: consecutive lanes read consecutive columns (16-byte vectors when the rows allow), each
/// lane reports 0 or 1, the group adds the reports (group_sum) and lane 0 writes the flag.
struct NonFiniteArgs {
  const float* rows;
  std::int64_t count;
  std::int64_t dim;
  std::uint8_t* skip;
};

/// Launch shape of a scan: a lane group per row, moving floats or (vectorized) float4s.
struct NonFinitePlan {
  GroupPlan groups;
  bool vectorized = false;  ///< dim % 4 == 0 and rows 16-byte aligned
};

/// Plans a scan of `count` rows of `dim` floats; `aligned` says the rows start 16-byte aligned.
EK_HOST_DEVICE inline NonFinitePlan plan_nonfinite(std::int64_t count, std::int64_t dim, bool aligned) {
  NonFinitePlan plan;
  plan.vectorized = aligned && dim % 4 == 0;
  plan.groups = plan_groups(count, plan.vectorized ? dim / 4 : dim);
  return plan;
}

// Whether v is neither NaN nor infinite: the rule the optimizer math judges updates by too.
using detail::finite_value;

/// Phase 1, lane `lane` of the group of row `row`: 1 when one of its columns is not finite, else
/// 0; 0 for a row past the batch or already skipped (its lanes still join the group's sum).
EK_HOST_DEVICE inline float nonfinite_row_phase(const NonFinitePlan& plan, const NonFiniteArgs& a, std::int64_t row,
                                                int lane) {
  if (row >= a.count || a.skip[row] != 0) return 0.0f;
  const int lanes = plan.groups.lanes;
  bool bad = false;
  if (plan.vectorized) {
    const auto* vectors = reinterpret_cast<const Float4*>(a.rows + row * a.dim);
    for (std::int64_t c = lane; c < a.dim / 4; c += lanes) {
      const Float4 v = vectors[c];
      bad = bad || !finite_value(v.x) || !finite_value(v.y) || !finite_value(v.z) || !finite_value(v.w);
    }
  } else {
    const float* values = a.rows + row * a.dim;
    for (std::int64_t c = lane; c < a.dim; c += lanes) bad = bad || !finite_value(values[c]);
  }
  return bad ? 1.0f : 0.0f;
}

/// Phase 2, given the group's sum of phase 1: lane 0 flags the row 2 (1: left out before the scan).
EK_HOST_DEVICE inline void nonfinite_mark_phase(const NonFiniteArgs& a, std::int64_t row, int lane, float bad_lanes) {
  if (lane == 0 && row < a.count && bad_lanes != 0.0f) a.skip[row] = 2;
}

}  // namespace embedkit::kernels
