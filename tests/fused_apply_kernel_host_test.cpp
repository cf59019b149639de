// The fused train step's phases, replayed lane by lane on the CPU, against the unfused kernels'
// bodies on the same piece sums (combine_body, then the non-finite scan, then the optimizer
// step's phases): weights and optimizer state bitwise equal, and the same rows skipped (a
// non-finite gradient, or under the skip policy an update that overflows, as the CPU step
// rejects it), for every built-in optimizer, constraint and non-finite policy, across dims and a
// hot id of many pieces.
#include <embedkit/detail/summation_order.hpp>

#include <gtest/gtest.h>

#include "cpu/optimizer_apply.hpp"
#include "cpu/segments.hpp"
#include "kernels/elementwise_kernel.hpp"
#include "kernels/fused_apply_kernel.hpp"
#include "kernels/group_reduce.hpp"
#include "kernels/optimizer_kernel.hpp"
#include "kernels/segment_reduce_kernel.hpp"
#include "tests/apply_kernel_replay.hpp"
#include "tests/kernel_host_launch.hpp"
#include "tests/scan_kernel_replay.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

using embedkit::ConstraintKind;
using embedkit::OptimizerKind;
using embedkit::testing::host_launch;
using namespace embedkit::kernels;

// The fused kernel (fused_apply.cu) for `groups` groups of `lanes` lanes; returns its counter.
std::int64_t replay_fused(const FusedApplyArgs& args, std::int64_t groups, int lanes) {
  std::int64_t skipped = 0;
  std::vector<LaneRow> rows(static_cast<std::size_t>(lanes));
  std::vector<LaneUpdate> updates(static_cast<std::size_t>(lanes));
  std::vector<float> shares(static_cast<std::size_t>(lanes));
  for (std::int64_t group = 0; group < groups; ++group) {
    for (int lane = 0; lane < lanes; ++lane) rows[lane] = combine_phase(group, lane, lanes, args);
    if (args.skip_nonfinite) {
      for (int lane = 0; lane < lanes; ++lane) shares[lane] = nonfinite_phase(rows[lane], lane, lanes, args.step.dim);
      group_sum_host(shares.data(), lanes);
      if (shares[0] > 0.0f) {
        ++skipped;  // lane 0's atomicAdd
        for (auto& row : rows) row.id = -1;
      }
    }
    const float accumulator = rows[0].id >= 0 && embedkit::detail::has_row_statistic(args.step.rule.kind)
                                  ? args.step.slot0[rows[0].id]
                                  : 0.0f;
    for (int lane = 0; lane < lanes; ++lane)
      shares[lane] = fused_gradient_squares_phase(rows[lane], lane, lanes, args.step);
    group_sum_host(shares.data(), lanes);
    const std::vector<float> squares = shares;
    for (int lane = 0; lane < lanes; ++lane) {
      updates[lane] = fused_update_phase(rows[lane], lane, lanes, args.step, squares[lane], accumulator);
    }
    if (args.step.rule.judge_results) {
      for (int lane = 0; lane < lanes; ++lane) {
        shares[lane] = fused_judge_phase(rows[lane], updates[lane], lane, lanes, args.step.dim);
      }
      group_sum_host(shares.data(), lanes);
      if (shares[0] > 0.0f) {
        ++skipped;  // lane 0's atomicAdd
        for (auto& row : rows) row.id = -1;
      }
    }
    for (int lane = 0; lane < lanes; ++lane) fused_store_phase(rows[lane], updates[lane], lane, lanes, args.step);
    const std::int64_t id = rows[0].id;
    std::vector<embedkit::detail::SquareSum> weight_squares(static_cast<std::size_t>(lanes));
    for (int lane = 0; lane < lanes; ++lane) weight_squares[lane] = weight_squares_phase(id, lane, lanes, args.step);
    group_sum_host(weight_squares.data(), lanes);
    for (int lane = 0; lane < lanes; ++lane) constraint_phase(id, lane, lanes, args.step, weight_squares[lane]);
  }
  return skipped;
}

struct Optimizer {
  const char* name;
  OptimizerKind kind;
  float momentum;
  bool nesterov;
};

const Optimizer kOptimizers[] = {{"sgd", OptimizerKind::sgd, 0.0f, false},
                                 {"momentum", OptimizerKind::sgd, 0.9f, false},
                                 {"nesterov", OptimizerKind::sgd, 0.9f, true},
                                 {"adagrad", OptimizerKind::adagrad, 0.0f, false},
                                 {"rowwise_adagrad", OptimizerKind::rowwise_adagrad, 0.0f, false},
                                 {"adam", OptimizerKind::adam, 0.0f, false},
                                 {"ftrl", OptimizerKind::ftrl, 0.0f, false}};

using Case = std::tuple<int, std::int64_t, ConstraintKind, bool>;  // optimizer, dim, constraint, skip

class FusedApplyHost : public ::testing::TestWithParam<Case> {};

TEST_P(FusedApplyHost, FusedPhasesEqualCombineThenApplyBitwise) {
  const auto [which, dim, constraint, skip_nonfinite] = GetParam();
  const Optimizer& optimizer = kOptimizers[which];
  constexpr std::int64_t kRows = 500, kPadding = 7, kPositions = 2000;
  std::mt19937_64 rng(static_cast<std::uint64_t>(dim * 131 + which));
  const auto random = [&] { return static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 1000.0f; };
  std::vector<std::int64_t> ids(kPositions);
  for (auto& id : ids) id = rng() % 3 == 0 ? 42 : static_cast<std::int64_t>(rng() % kRows);  // 42: ~21 pieces
  ids[10] = kPadding;  // padding and an out-of-range id receive nothing
  ids[11] = kRows + 3;
  std::vector<float> grad(static_cast<std::size_t>(kPositions * dim));
  for (auto& g : grad) g = random();
  ids[20] = 100;  // rows 100 and 101 hold a NaN and an infinity, in their last and first column
  ids[21] = 101;
  grad[20 * dim + dim - 1] = std::numeric_limits<float>::quiet_NaN();
  grad[21 * dim] = -std::numeric_limits<float>::infinity();
  // Rows 200 and 201 have finite gradients, but weights near the float32 limit: their update
  // overflows (a weight past the limit, or g² in the state), which the skip policy rejects.
  constexpr std::int64_t kOverflowing[] = {200, 201};
  ids[22] = kOverflowing[0];
  ids[23] = kOverflowing[1];
  grad[22 * dim + dim - 1] = -3.0e38f;
  grad[23 * dim] = -3.0e38f;

  const embedkit::cpu::Segments segments =
      embedkit::cpu::group_positions(ids.data(), kPositions, kRows, {true, kPadding});
  const std::int64_t runs = segments.size();
  std::vector<std::int64_t> first_piece(static_cast<std::size_t>(runs + 1), 0);
  for (std::int64_t u = 0; u < runs; ++u) {
    first_piece[u + 1] =
        first_piece[u] + embedkit::detail::sum_piece_count(segments.run_begin[u + 1] - segments.run_begin[u]);
  }
  const std::int64_t pieces = first_piece.back();
  ASSERT_GT(pieces, runs + 15);  // the hot id spans many pieces
  std::vector<std::int64_t> piece_begin(static_cast<std::size_t>(pieces)), piece_end(piece_begin.size());
  const PieceLayoutArgs layout{segments.run_begin.data(), first_piece.data(), runs, piece_begin.data(),
                               piece_end.data()};
  host_launch((runs + kLayoutBlockThreads - 1) / kLayoutBlockThreads, kLayoutBlockThreads,
              [&](std::int64_t block, int thread) { piece_layout_body(block, thread, layout); });
  std::vector<float> piece_sums(static_cast<std::size_t>(pieces * dim));
  const GroupPlan piece_plan = plan_groups(pieces, dim);
  const PieceSumArgs sums{segments.positions.data(), piece_begin.data(), piece_end.data(), pieces, grad.data(), dim,
                          piece_sums.data()};
  host_launch(piece_plan.blocks, piece_plan.threads(),
              [&](std::int64_t block, int thread) { piece_sum_body(block, thread, piece_plan, sums); });

  std::vector<float> weights(static_cast<std::size_t>(kRows * dim)), slot0(weights.size()), slot1(weights.size());
  for (auto& w : weights) w = random();
  for (auto& s : slot0) s = std::abs(random()) + 0.1f;  // accumulators are positive
  for (auto& s : slot1) s = std::abs(random());         // Adam's v is non-negative too
  for (const std::int64_t id : kOverflowing) std::fill_n(weights.begin() + id * dim, dim, 3.3e38f);
  const std::vector<float> original = weights;
  embedkit::detail::StepScalars s = embedkit::testing::replay_scalars(true);
  s.momentum = optimizer.momentum;
  s.nesterov = optimizer.nesterov;
  const bool has_slot0 = optimizer.kind != OptimizerKind::sgd || optimizer.momentum != 0.0f;
  const GroupPlan plan = plan_groups(runs, dim);
  const std::int64_t groups = plan.blocks * plan.groups_per_block;  // idle groups of the last block too

  // Unfused: the reduced rows in memory, flagged, then the optimizer step.
  std::vector<float> unfused_weights = weights, unfused_slot0 = slot0, unfused_slot1 = slot1;
  std::vector<float> rows(static_cast<std::size_t>(runs * dim));
  const CombineArgs combine{first_piece.data(), runs, piece_sums.data(), dim, rows.data()};
  host_launch(plan.blocks, plan.threads(),
              [&](std::int64_t block, int thread) { combine_body(block, thread, plan, combine); });
  std::vector<std::uint8_t> flags(static_cast<std::size_t>(runs), 0);
  if (skip_nonfinite) {
    embedkit::testing::replay_nonfinite(NonFiniteArgs{rows.data(), runs, dim, flags.data()});
  }
  // The CPU step on the same rows, judging updates under the skip policy as the kernels do.
  const bool has_slot1 = optimizer.kind == OptimizerKind::adam || optimizer.kind == OptimizerKind::ftrl;
  std::vector<float> cpu_weights = weights, cpu_slot0 = slot0, cpu_slot1 = slot1;
  const embedkit::cpu::RowStep update{cpu_weights.data(),
                                      has_slot0 ? cpu_slot0.data() : nullptr,
                                      has_slot1 ? cpu_slot1.data() : nullptr,
                                      dim,
                                      {optimizer.kind, s, constraint, 0.5f, skip_nonfinite}};
  const std::int64_t cpu_rejected =
      embedkit::cpu::update_rows(update, segments.unique_ids.data(), rows.data(), flags.data(), runs);

  const RowStep unfused_step{unfused_weights.data(),
                             has_slot0 ? unfused_slot0.data() : nullptr,
                             unfused_slot1.data(),
                             dim,
                             {optimizer.kind, s, constraint, 0.5f, skip_nonfinite}};
  const std::int64_t rejected = embedkit::testing::replay_apply(
      ApplyArgs{
          unfused_step, segments.unique_ids.data(), rows.data(), flags.data(), runs, false, 0, kRows, {true, kPadding}},
      groups, plan.lanes);
  const auto flagged = static_cast<std::int64_t>(std::count(flags.begin(), flags.end(), std::uint8_t{2}));
  EXPECT_EQ(flagged, skip_nonfinite ? 2 : 0);
  EXPECT_EQ(rejected, skip_nonfinite ? 2 : 0);
  EXPECT_EQ(rejected, cpu_rejected);
  // Where no row statistic is summed (in butterfly order here, left to right there), bitwise.
  const bool statistic = optimizer.kind == OptimizerKind::rowwise_adagrad || constraint == ConstraintKind::max_norm ||
                         constraint == ConstraintKind::unit_norm;
  if (skip_nonfinite && !statistic) {
    EXPECT_EQ(std::memcmp(unfused_weights.data(), cpu_weights.data(), weights.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(unfused_slot0.data(), cpu_slot0.data(), slot0.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(unfused_slot1.data(), cpu_slot1.data(), slot1.size() * sizeof(float)), 0);
  }

  // Fused: the same piece sums, combined in registers.
  const RowStep fused_step{weights.data(),
                           has_slot0 ? slot0.data() : nullptr,
                           slot1.data(),
                           dim,
                           {optimizer.kind, s, constraint, 0.5f, skip_nonfinite}};
  const std::int64_t skipped = replay_fused(FusedApplyArgs{fused_step, segments.unique_ids.data(), first_piece.data(),
                                                           runs, piece_sums.data(), skip_nonfinite, nullptr},
                                            groups, plan.lanes);
  EXPECT_EQ(skipped, flagged + rejected);
  EXPECT_EQ(std::memcmp(weights.data(), unfused_weights.data(), weights.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(slot0.data(), unfused_slot0.data(), slot0.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(slot1.data(), unfused_slot1.data(), slot1.size() * sizeof(float)), 0);
  // Skipped rows really were left alone; the hot row really moved.
  const auto row_equal = [&](std::int64_t id) {
    return std::equal(weights.begin() + id * dim, weights.begin() + (id + 1) * dim, original.begin() + id * dim);
  };
  for (const std::int64_t id : {std::int64_t{100}, std::int64_t{101}, kOverflowing[0], kOverflowing[1]}) {
    EXPECT_EQ(row_equal(id), skip_nonfinite) << id;
  }
  EXPECT_FALSE(row_equal(42));
}

INSTANTIATE_TEST_SUITE_P(Steps, FusedApplyHost,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(kOptimizers))),
                                            ::testing::Values<std::int64_t>(1, 3, 4, 64, 129, 256),
                                            ::testing::Values(ConstraintKind::none, ConstraintKind::max_norm,
                                                              ConstraintKind::unit_norm, ConstraintKind::non_neg),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           const Case& c = param_info.param;
                           return std::string(kOptimizers[std::get<0>(c)].name) + "_dim" +
                                  std::to_string(std::get<1>(c)) + "_constraint" +
                                  std::to_string(static_cast<int>(std::get<2>(c))) +
                                  (std::get<3>(c) ? "_skip" : "_apply");
                         });

TEST(FusedApplyPlan, RowsUpTo32LanesOfRegistersFit) {
  EXPECT_FALSE(fits_fused(0));
  for (std::int64_t dim = 1; dim <= 32 * kMaxColumnsPerLane; ++dim) {
    EXPECT_TRUE(fits_fused(dim)) << dim;
    EXPECT_LE(dim, plan_groups(1, dim).lanes * std::int64_t{kMaxColumnsPerLane}) << dim;
  }
  EXPECT_FALSE(fits_fused(32 * kMaxColumnsPerLane + 1));
}

}  // namespace
