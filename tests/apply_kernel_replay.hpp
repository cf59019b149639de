#pragma once
// The unfused optimizer kernel (kernels/optimizer.cu's apply_kernel) replayed on the CPU: its
// phases for every group, lane by lane, around the collective's host twin, as the device runs them.

#include "kernels/group_reduce.hpp"
#include "kernels/optimizer_kernel.hpp"

#include <cstdint>
#include <vector>

namespace embedkit::testing {

/// Runs apply_kernel's phases for `groups` groups of `lanes` lanes.
inline void replay_apply(const kernels::ApplyArgs& args, std::int64_t groups, int lanes) {
  using namespace embedkit::kernels;
  std::vector<float> shares(static_cast<std::size_t>(lanes));
  for (std::int64_t group = 0; group < groups; ++group) {
    const RowWork work = row_work(group, args);
    const float accumulator =
        work.id >= 0 && args.step.kind == OptimizerKind::rowwise_adagrad ? args.step.slot0[work.id] : 0.0f;
    for (int lane = 0; lane < lanes; ++lane) shares[lane] = gradient_squares_phase(work, lane, lanes, args);
    group_sum_host(shares.data(), lanes);
    const std::vector<float> gradient_squares = shares;
    for (int lane = 0; lane < lanes; ++lane) update_phase(work, lane, lanes, args, gradient_squares[lane], accumulator);
    for (int lane = 0; lane < lanes; ++lane) shares[lane] = weight_squares_phase(work.id, lane, lanes, args.step);
    group_sum_host(shares.data(), lanes);
    for (int lane = 0; lane < lanes; ++lane) constraint_phase(work.id, lane, lanes, args.step, shares[lane]);
  }
}

}  // namespace embedkit::testing
