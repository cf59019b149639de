#pragma once
// Host replays of the two reading kernels of kernels/table_ops.cu, phase by phase around their
// collectives: the non-finite scan (a lane group per row, group_sum_host between the phases) and
// the penalty (a warp per chunk, tile by tile through the warp's tile of terms).

#include "kernels/elementwise_kernel.hpp"
#include "kernels/group_reduce.hpp"
#include "kernels/penalty_kernel.hpp"

#include <cstdint>
#include <vector>

namespace embedkit::testing {

/// run_nonfinite's launch, replayed: the plan it picks for `args`, every group of every block.
inline void replay_nonfinite(const kernels::NonFiniteArgs& args) {
  using namespace kernels;
  if (args.count == 0) return;
  const NonFinitePlan plan =
      plan_nonfinite(args.count, args.dim, reinterpret_cast<std::uintptr_t>(args.rows) % 16 == 0);
  const int lanes = plan.groups.lanes;
  for (std::int64_t block = 0; block < plan.groups.blocks; ++block) {
    for (int group = 0; group < plan.groups.groups_per_block; ++group) {
      const std::int64_t row = block * plan.groups.groups_per_block + group;
      float reports[32];
      for (int lane = 0; lane < lanes; ++lane) reports[lane] = nonfinite_row_phase(plan, args, row, lane);
      group_sum_host(reports, lanes);
      for (int lane = 0; lane < lanes; ++lane) nonfinite_mark_phase(args, row, lane, reports[lane]);
    }
  }
}

/// run_penalty_chunks' launch, replayed: args.partials gets every chunk's sum. Every lane adds the
/// tile alike on the device; here each lane's sum is formed and checked to be the same.
inline bool replay_penalty(const kernels::PenaltyArgs& args) {
  using namespace kernels;
  bool lanes_agree = true;
  const std::int64_t chunks = detail::penalty_chunks(args.count);
  for (std::int64_t block = 0; block < penalty_blocks(args.count); ++block) {
    for (int warp = 0; warp < kPenaltyChunksPerBlock; ++warp) {
      const std::int64_t chunk = block * kPenaltyChunksPerBlock + warp;
      if (chunk >= chunks) continue;
      std::vector<double> sums(kPenaltyLanes, 0.0);
      double terms[kPenaltyTile];
      for (std::int64_t tile = 0; tile < penalty_tiles(args, chunk); ++tile) {
        for (int lane = 0; lane < kPenaltyLanes; ++lane) penalty_terms_phase(args, chunk, tile, lane, terms);
        for (int lane = 0; lane < kPenaltyLanes; ++lane)
          sums[lane] = penalty_add_phase(args, chunk, tile, terms, sums[lane]);
      }
      for (const double s : sums) lanes_agree = lanes_agree && (s == sums[0] || (s != s && sums[0] != sums[0]));
      args.partials[chunk] = sums[0];
    }
  }
  return lanes_agree;
}

}  // namespace embedkit::testing
