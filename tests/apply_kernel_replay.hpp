#pragma once
// The unfused optimizer kernels (kernels/optimizer.cu's apply_kernel and find_rejected_kernel)
// replayed on the CPU: their phases for every group, lane by lane, around the collective's host
// twin, as the device runs them.

#include <embedkit/detail/optimizer_math.hpp>

#include "kernels/group_reduce.hpp"
#include "kernels/optimizer_kernel.hpp"

#include <cstdint>
#include <vector>

namespace embedkit::testing {

/// Step scalars that exercise every optimizer's arithmetic: Nesterov momentum (callers may
/// override it), Adam's and FTRL's settings, and with `penalized` weight decay and L1/L2 too.
inline detail::StepScalars replay_scalars(bool penalized) {
  detail::StepScalars s;
  s.learning_rate = 0.05f;
  s.weight_decay = penalized ? 0.01f : 0.0f;
  s.regularizer_l1 = penalized ? 0.001f : 0.0f;
  s.regularizer_l2 = penalized ? 0.002f : 0.0f;
  s.momentum = 0.9f;
  s.nesterov = true;
  s.epsilon = 1e-7f;
  s.one_minus_beta_1 = 0.1f;
  s.one_minus_beta_2 = 0.001f;
  s.adam_alpha = 0.01f;
  s.ftrl_power = 0.5f;
  s.ftrl_l1 = 0.01f;
  s.ftrl_l2 = 0.02f;
  s.ftrl_l2_shrinkage = 0.01f;
  return s;
}

/// Runs apply_kernel's phases for `groups` groups of `lanes` lanes; returns what its counter
/// (args.rejected, not written here) would hold: the rows whose update the judgement rejected.
inline std::int64_t replay_apply(const kernels::ApplyArgs& args, std::int64_t groups, int lanes) {
  using namespace embedkit::kernels;
  std::int64_t rejected = 0;
  std::vector<float> shares(static_cast<std::size_t>(lanes));
  for (std::int64_t group = 0; group < groups; ++group) {
    RowWork work = row_work(group, args);
    const float accumulator =
        work.id >= 0 && embedkit::detail::has_row_statistic(args.step.rule.kind) ? args.step.slot0[work.id] : 0.0f;
    for (int lane = 0; lane < lanes; ++lane) shares[lane] = gradient_squares_phase(work, lane, lanes, args);
    group_sum_host(shares.data(), lanes);
    const std::vector<float> gradient_squares = shares;
    if (args.step.rule.judge_results) {
      for (int lane = 0; lane < lanes; ++lane) {
        shares[lane] = judge_phase(work, lane, lanes, args, gradient_squares[lane], accumulator);
      }
      group_sum_host(shares.data(), lanes);
      if (shares[0] > 0.0f) {
        ++rejected;  // lane 0's atomicAdd
        work.id = -1;
      }
    }
    for (int lane = 0; lane < lanes; ++lane) update_phase(work, lane, lanes, args, gradient_squares[lane], accumulator);
    std::vector<detail::SquareSum> squares(static_cast<std::size_t>(lanes));
    for (int lane = 0; lane < lanes; ++lane) squares[lane] = weight_squares_phase(work.id, lane, lanes, args.step);
    group_sum_host(squares.data(), lanes);
    for (int lane = 0; lane < lanes; ++lane) constraint_phase(work.id, lane, lanes, args.step, squares[lane]);
  }
  return rejected;
}

/// Runs find_rejected_kernel's phases (optimizer.cu) for `groups` groups of `lanes` lanes: the
/// smallest id the judgement rejects, or -1, as the backend reads its word back.
inline std::int64_t replay_find_rejected(const kernels::ApplyArgs& args, std::int64_t groups, int lanes) {
  using namespace embedkit::kernels;
  std::int64_t first = -1;
  std::vector<float> shares(static_cast<std::size_t>(lanes));
  for (std::int64_t group = 0; group < groups; ++group) {
    const RowWork work = row_work(group, args);
    const float accumulator =
        work.id >= 0 && embedkit::detail::has_row_statistic(args.step.rule.kind) ? args.step.slot0[work.id] : 0.0f;
    for (int lane = 0; lane < lanes; ++lane) shares[lane] = gradient_squares_phase(work, lane, lanes, args);
    group_sum_host(shares.data(), lanes);
    const std::vector<float> gradient_squares = shares;
    for (int lane = 0; lane < lanes; ++lane) {
      shares[lane] = judge_phase(work, lane, lanes, args, gradient_squares[lane], accumulator);
    }
    group_sum_host(shares.data(), lanes);
    if (shares[0] > 0.0f && (first < 0 || work.id < first)) first = work.id;  // lane 0's atomicMin
  }
  return first;
}

}  // namespace embedkit::testing
