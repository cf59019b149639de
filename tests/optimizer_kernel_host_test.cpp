// The CUDA optimizer kernel's phases, replayed lane by lane on the CPU with the host twin of the
// group collective, against the CPU optimizer step: bitwise for element-wise updates, within float
// rounding where a row statistic is summed in butterfly order instead of left to right.
#include <gtest/gtest.h>

#include "cpu/optimizer_apply.hpp"
#include "kernels/group_reduce.hpp"
#include "kernels/optimizer_kernel.hpp"
#include "kernels/segment_reduce_kernel.hpp"
#include "tests/apply_kernel_replay.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

using embedkit::ConstraintKind;
using embedkit::OptimizerKind;
using namespace embedkit::kernels;

struct Case {
  OptimizerKind kind;
  ConstraintKind constraint;
  bool dense;
  std::int64_t dim;
};

class OptimizerKernelHost : public ::testing::TestWithParam<Case> {};

TEST_P(OptimizerKernelHost, PhasesMatchTheCpuStep) {
  const auto [kind, constraint, dense, dim] = GetParam();
  for (const bool penalized : {true, false}) {
    SCOPED_TRACE(penalized ? "penalty and weight decay" : "plain");
    constexpr std::int64_t kRows = 120;
    std::mt19937_64 rng(static_cast<std::uint64_t>(dim) * 31 + static_cast<std::uint64_t>(kind));
    const auto random = [&] { return static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 1000.0f; };
    std::vector<float> weights(static_cast<std::size_t>(kRows * dim)), slot0(weights.size()), slot1(weights.size());
    for (auto& w : weights) w = random();
    for (auto& s : slot0) s = std::abs(random()) + 0.1f;  // accumulators are positive
    for (auto& s : slot1) s = std::abs(random());         // Adam's v is non-negative too
    std::vector<std::int64_t> ids;
    for (std::int64_t id = 0; id < kRows; id += 1 + static_cast<std::int64_t>(rng() % 3)) ids.push_back(id);
    const auto count = static_cast<std::int64_t>(ids.size());
    std::vector<float> grads(static_cast<std::size_t>(count * dim));
    for (auto& g : grads) g = random();
    std::vector<std::uint8_t> skip(static_cast<std::size_t>(count), 0);
    skip[1] = 1;

    // Without penalty and decay the CPU takes its plain loops (cpu/optimizer_apply.cpp): both ways
    // must give the device's bits.
    const embedkit::detail::StepScalars s = embedkit::testing::replay_scalars(penalized);

    // The CPU step on copies.
    std::vector<float> cpu_weights = weights, cpu_slot0 = slot0, cpu_slot1 = slot1;
    const embedkit::cpu::RowStep update{
        cpu_weights.data(), cpu_slot0.data(), cpu_slot1.data(), dim, {kind, s, constraint, 0.5f, false}};
    if (dense) {
      embedkit::cpu::update_every_row(update, 0, kRows, ids.data(), grads.data(), skip.data(), count, {true, 5});
    } else {
      embedkit::cpu::update_rows(update, ids.data(), grads.data(), skip.data(), count);
    }

    const ApplyArgs args{{weights.data(), slot0.data(), slot1.data(), dim, {kind, s, constraint, 0.5f}},
                         ids.data(),
                         grads.data(),
                         skip.data(),
                         count,
                         dense,
                         0,
                         kRows,
                         {true, 5}};
    embedkit::testing::replay_apply(args, dense ? kRows : count, plan_groups(1, dim).lanes);

    const bool statistic = kind == OptimizerKind::rowwise_adagrad || constraint == ConstraintKind::max_norm ||
                           constraint == ConstraintKind::unit_norm;
    for (const auto& [got, expected, name] :
         {std::tuple{&weights, &cpu_weights, "weights"}, std::tuple{&slot0, &cpu_slot0, "slot0"},
          std::tuple{&slot1, &cpu_slot1, "slot1"}}) {
      if (!statistic) {
        EXPECT_EQ(std::memcmp(got->data(), expected->data(), got->size() * sizeof(float)), 0) << name;
        continue;
      }
      for (std::size_t i = 0; i < got->size(); ++i) {
        ASSERT_NEAR((*got)[i], (*expected)[i], 1e-6f * (1.0f + std::abs((*expected)[i]))) << name << " " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, OptimizerKernelHost,
                         ::testing::Values(Case{OptimizerKind::sgd, ConstraintKind::none, false, 16},
                                           Case{OptimizerKind::sgd, ConstraintKind::non_neg, false, 3},
                                           Case{OptimizerKind::adagrad, ConstraintKind::none, false, 64},
                                           Case{OptimizerKind::rowwise_adagrad, ConstraintKind::none, false, 129},
                                           Case{OptimizerKind::adam, ConstraintKind::max_norm, false, 64},
                                           Case{OptimizerKind::adam, ConstraintKind::none, true, 8},
                                           Case{OptimizerKind::ftrl, ConstraintKind::unit_norm, false, 32},
                                           // lazy: false, every row stepped (momentum with Nesterov)
                                           Case{OptimizerKind::sgd, ConstraintKind::none, true, 16},
                                           Case{OptimizerKind::sgd, ConstraintKind::non_neg, true, 3},
                                           Case{OptimizerKind::adagrad, ConstraintKind::max_norm, true, 64},
                                           Case{OptimizerKind::rowwise_adagrad, ConstraintKind::none, true, 129},
                                           Case{OptimizerKind::ftrl, ConstraintKind::none, true, 32},
                                           Case{OptimizerKind::ftrl, ConstraintKind::unit_norm, true, 7}),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return std::string(embedkit::to_string(param_info.param.kind)) + "_constraint" +
                                  std::to_string(static_cast<int>(param_info.param.constraint)) +
                                  (param_info.param.dense ? "_dense" : "") + "_dim" +
                                  std::to_string(param_info.param.dim);
                         });

// Updates judged by detail::keeps_update (the skip and error policies): the kernel's phases must
// reject exactly the rows the CPU step rejects, leave them and their state as they were, and name
// the same first id for the error policy's check. Values are multiples of 1/16, so row-wise
// Adagrad's Σ g² is exact in any order and every comparison is bitwise.
struct JudgedOptimizer {
  const char* name;
  OptimizerKind kind;
  float momentum;
  bool nesterov;
  bool dense;
};

const JudgedOptimizer kJudged[] = {{"sgd", OptimizerKind::sgd, 0.0f, false, false},
                                   {"momentum", OptimizerKind::sgd, 0.9f, false, false},
                                   {"nesterov", OptimizerKind::sgd, 0.9f, true, false},
                                   {"adagrad", OptimizerKind::adagrad, 0.0f, false, false},
                                   {"rowwise_adagrad", OptimizerKind::rowwise_adagrad, 0.0f, false, false},
                                   {"adam", OptimizerKind::adam, 0.0f, false, false},
                                   {"adam_dense", OptimizerKind::adam, 0.0f, false, true},
                                   {"ftrl", OptimizerKind::ftrl, 0.0f, false, false}};

using JudgedCase = std::tuple<int, std::int64_t, ConstraintKind>;  // optimizer, dim, constraint

class JudgedUpdateHost : public ::testing::TestWithParam<JudgedCase> {};

TEST_P(JudgedUpdateHost, KernelRejectsAndNamesTheRowsTheCpuDoes) {
  const auto [which, dim, constraint] = GetParam();
  const JudgedOptimizer& optimizer = kJudged[which];
  constexpr std::int64_t kRows = 64, kPadding = 5;
  // Row 20 (touched) overflows in its last column: weights near the float32 limit pushed past it,
  // or g² infinite in the state. Row 50 (touched) likewise. Row 9 (untouched) has an Adam m so
  // large that a zero-gradient dense step divides it by ε to infinity. Row 30's gradient is
  // flagged non-finite already (skip), so it is neither updated nor judged.
  constexpr std::int64_t kOverflowing[] = {20, 50};
  constexpr std::int64_t kHugeMoment = 9, kFlagged = 30;
  std::mt19937_64 rng(static_cast<std::uint64_t>(dim) * 17 + static_cast<std::uint64_t>(which));
  const auto grid = [&](int steps) {
    return static_cast<float>(static_cast<int>(rng() % (2 * steps + 1)) - steps) / 16.0f;
  };
  std::vector<float> weights(static_cast<std::size_t>(kRows * dim)), slot0(weights.size()), slot1(weights.size());
  for (auto& w : weights) w = grid(32);
  for (auto& s : slot0) s = std::abs(grid(32)) + 1.0f / 16.0f;  // accumulators are positive
  for (auto& s : slot1) s = std::abs(grid(32));                 // Adam's v is non-negative
  std::vector<std::int64_t> ids;
  for (std::int64_t id = 0; id < kRows; id += 1 + static_cast<std::int64_t>(rng() % 2)) {
    if (id != kHugeMoment) ids.push_back(id);
  }
  for (const std::int64_t id : {kOverflowing[0], kOverflowing[1], kFlagged}) {
    if (!std::binary_search(ids.begin(), ids.end(), id)) ids.insert(std::lower_bound(ids.begin(), ids.end(), id), id);
  }
  const auto count = static_cast<std::int64_t>(ids.size());
  const auto position = [&](std::int64_t id) { return std::lower_bound(ids.begin(), ids.end(), id) - ids.begin(); };
  std::vector<float> grads(static_cast<std::size_t>(count * dim));
  for (auto& g : grads) g = grid(32);
  for (const std::int64_t id : kOverflowing) {
    std::fill_n(weights.begin() + id * dim, dim, 3.3e38f);
    grads[position(id) * dim + dim - 1] = -3.0e38f;
  }
  slot0[kHugeMoment * dim] = 3.0e38f;
  slot1[kHugeMoment * dim] = 0.0f;
  std::vector<std::uint8_t> skip(static_cast<std::size_t>(count), 0);
  skip[position(kFlagged)] = 2;

  embedkit::detail::StepScalars s = embedkit::testing::replay_scalars(false);
  s.momentum = optimizer.momentum;
  s.nesterov = optimizer.nesterov;
  // The slots a table of this optimizer has.
  const bool has_slot0 = optimizer.kind != OptimizerKind::sgd || optimizer.momentum != 0.0f;
  const bool has_slot1 = optimizer.kind == OptimizerKind::adam || optimizer.kind == OptimizerKind::ftrl;
  const embedkit::detail::Padding padding{true, kPadding};

  struct Table {
    std::vector<float> weights, slot0, slot1;
    float* slot0_or_null(bool has) { return has ? slot0.data() : nullptr; }
    float* slot1_or_null(bool has) { return has ? slot1.data() : nullptr; }
  };
  const Table original{weights, slot0, slot1};
  const auto cpu_update = [&](Table& table) {
    return embedkit::cpu::RowStep{table.weights.data(),
                                  table.slot0_or_null(has_slot0),
                                  table.slot1_or_null(has_slot1),
                                  dim,
                                  {optimizer.kind, s, constraint, 0.5f, true}};
  };
  const auto kernel_args = [&](Table& table) {
    const RowStep step{table.weights.data(),
                       table.slot0_or_null(has_slot0),
                       table.slot1_or_null(has_slot1),
                       dim,
                       {optimizer.kind, s, constraint, 0.5f, true}};
    return ApplyArgs{step, ids.data(), grads.data(), skip.data(), count, optimizer.dense, 0, kRows, padding};
  };
  const std::int64_t groups = optimizer.dense ? kRows : count;
  const int lanes = plan_groups(1, dim).lanes;
  const auto expect_bitwise = [](const Table& got, const Table& expected, const char* what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(std::memcmp(got.weights.data(), expected.weights.data(), got.weights.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(got.slot0.data(), expected.slot0.data(), got.slot0.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(got.slot1.data(), expected.slot1.data(), got.slot1.size() * sizeof(float)), 0);
  };

  // Error policy: the judging pass names the CPU's first id and writes nothing.
  Table on_cpu = original, on_device = original;
  const std::int64_t cpu_first = embedkit::cpu::first_rejected_update(
      cpu_update(on_cpu), optimizer.dense, 0, kRows, ids.data(), grads.data(), skip.data(), count, padding);
  EXPECT_EQ(cpu_first, optimizer.dense ? kHugeMoment : kOverflowing[0]);
  EXPECT_EQ(embedkit::testing::replay_find_rejected(kernel_args(on_device), groups, lanes), cpu_first);
  expect_bitwise(on_device, original, "the judging pass");

  // Skip policy: the same rows rejected, counted, and left with their state as they were.
  const std::int64_t cpu_rejected =
      optimizer.dense ? embedkit::cpu::update_every_row(cpu_update(on_cpu), 0, kRows, ids.data(), grads.data(),
                                                        skip.data(), count, padding)
                      : embedkit::cpu::update_rows(cpu_update(on_cpu), ids.data(), grads.data(), skip.data(), count);
  EXPECT_EQ(cpu_rejected, optimizer.dense ? 3 : 2);
  EXPECT_EQ(embedkit::testing::replay_apply(kernel_args(on_device), groups, lanes), cpu_rejected);
  expect_bitwise(on_device, on_cpu, "the step");
  for (const std::int64_t id : {kOverflowing[0], kOverflowing[1], kFlagged}) {
    if (id == kFlagged && optimizer.dense) continue;  // dense: a flagged row moves as an untouched one
    EXPECT_TRUE(std::equal(on_device.weights.begin() + id * dim, on_device.weights.begin() + (id + 1) * dim,
                           original.weights.begin() + id * dim))
        << id;
  }
  EXPECT_FALSE(std::equal(on_device.weights.begin(), on_device.weights.begin() + dim, original.weights.begin()));
}

INSTANTIATE_TEST_SUITE_P(Optimizers, JudgedUpdateHost,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(kJudged))),
                                            ::testing::Values<std::int64_t>(3, 40),
                                            ::testing::Values(ConstraintKind::none, ConstraintKind::non_neg)),
                         [](const ::testing::TestParamInfo<JudgedCase>& param_info) {
                           const JudgedCase& c = param_info.param;
                           return std::string(kJudged[std::get<0>(c)].name) + "_dim" + std::to_string(std::get<1>(c)) +
                                  "_constraint" + std::to_string(static_cast<int>(std::get<2>(c)));
                         });

TEST(GroupSum, HostTwinPairsLikeTheButterfly) {
  float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  group_sum_host(values, 8);
  for (const float v : values) EXPECT_EQ(v, 36.0f);
  // Order matters in float: the butterfly adds (((1+2)+(3+4))+((5+6)+(7+8))) pairwise, not left to right.
  float tiny[4] = {1e8f, 1.0f, -1e8f, 1.0f};
  group_sum_host(tiny, 4);
  EXPECT_EQ(tiny[0], (1e8f + -1e8f) + (1.0f + 1.0f));
}

}  // namespace
