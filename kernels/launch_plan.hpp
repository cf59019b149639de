#pragma once
// C++17, host and device. The launch shape every row-wise kernel uses: a group of lanes per item
// (a row, a bag, a piece), sized to the units one lane moves per step, several groups per block.

#include <embedkit/detail/host_device.hpp>

#include <cstdint>

namespace embedkit::kernels {

struct GroupPlan {
  int lanes = 32;            ///< threads per item: 4, 8, 16 or 32
  int groups_per_block = 8;  ///< items a block handles
  std::int64_t blocks = 0;   ///< grid size
  int threads() const { return lanes * groups_per_block; }
};

/// Threads per block of every group launch.
constexpr int kGroupBlockThreads = 256;

/// Plans `items` items of `units` units of work each (floats, or float4 vectors).
EK_HOST_DEVICE inline GroupPlan plan_groups(std::int64_t items, std::int64_t units) {
  GroupPlan plan;
  plan.lanes = units <= 4 ? 4 : units <= 8 ? 8 : units <= 16 ? 16 : 32;
  plan.groups_per_block = kGroupBlockThreads / plan.lanes;
  plan.blocks = (items + plan.groups_per_block - 1) / plan.groups_per_block;
  return plan;
}

}  // namespace embedkit::kernels
