#pragma once
// C++17, host and device. The row gather's per-thread body and its launch plan. The __global__
// wrapper in gather.cu calls gather_body with its (block, thread) coordinates; tests run the same
// body for every coordinate on the CPU (tests/kernel_host_launch.hpp).

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/id_range.hpp>
#include <embedkit/detail/padding.hpp>

#include "launch_plan.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// Launch shape of a gather: a group of lanes copies one output row.
struct GatherPlan {
  GroupPlan groups;
  bool vectorized = false;  ///< 16-byte loads and stores (dim % 4 == 0 and aligned pointers)
};

/// Plans a gather of `count` rows of `dim` floats; `aligned` says both matrices are 16-byte aligned.
EK_HOST_DEVICE inline GatherPlan plan_gather(std::int64_t count, std::int64_t dim, bool aligned) {
  GatherPlan plan;
  plan.vectorized = aligned && dim % 4 == 0;
  plan.groups = plan_groups(count, plan.vectorized ? dim / 4 : dim);  // what one lane moves per step
  return plan;
}

struct alignas(16) Float4 {
  float x, y, z, w;
};

/// Arguments of one gather: out[i, :] = weights[ids[i], :], zeros for padding and bad ids.
template <class Index>
struct GatherArgs {
  const float* weights;
  std::int64_t input_dim;
  std::int64_t dim;
  const Index* ids;
  std::int64_t count;
  detail::Padding padding;
  float* out;
  unsigned int* out_of_range;  ///< set to 1 when any id is outside [0, input_dim)
};

/// The work of thread `thread` of block `block`.
template <class Index>
EK_HOST_DEVICE inline void gather_body(std::int64_t block, int thread, const GatherPlan& plan,
                                       const GatherArgs<Index>& a) {
  const int lanes = plan.groups.lanes;
  const std::int64_t i = block * plan.groups.groups_per_block + thread / lanes;
  if (i >= a.count) return;
  const int lane = thread % lanes;
  const std::int64_t id = static_cast<std::int64_t>(a.ids[i]);
  const bool in_range = detail::id_in_range(id, a.input_dim);
  if (!in_range && lane == 0) *a.out_of_range = 1u;  // every writer stores the same value
  const bool copy = in_range && !a.padding.is(id);
  if (plan.vectorized) {
    const std::int64_t width = a.dim / 4;
    const Float4* source = reinterpret_cast<const Float4*>(a.weights + (copy ? id : 0) * a.dim);
    Float4* destination = reinterpret_cast<Float4*>(a.out + i * a.dim);
    for (std::int64_t c = lane; c < width; c += lanes) {
      destination[c] = copy ? source[c] : Float4{0.f, 0.f, 0.f, 0.f};
    }
  } else {
    const float* source = a.weights + (copy ? id : 0) * a.dim;
    float* destination = a.out + i * a.dim;
    for (std::int64_t c = lane; c < a.dim; c += lanes) destination[c] = copy ? source[c] : 0.f;
  }
}

}  // namespace embedkit::kernels
