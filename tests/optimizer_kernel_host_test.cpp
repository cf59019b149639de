// The CUDA optimizer kernel's phases, replayed lane by lane on the CPU with the host twin of the
// group collective, against the CPU optimizer step: bitwise for element-wise updates, within float
// rounding where a row statistic is summed in butterfly order instead of left to right.
#include <gtest/gtest.h>

#include "cpu/optimizer_apply.hpp"
#include "kernels/group_reduce.hpp"
#include "tests/apply_kernel_replay.hpp"
#include "kernels/optimizer_kernel.hpp"
#include "kernels/segment_reduce_kernel.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
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
    for (auto& s : slot1) s = std::abs(random());  // Adam's v is non-negative too
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
    embedkit::cpu::RowUpdate update;
    update.weights = cpu_weights.data();
    update.dim = dim;
    update.kind = kind;
    update.slot0 = cpu_slot0.data();
    update.slot1 = cpu_slot1.data();
    update.scalars = s;
    update.constraint = {constraint, 0.5};
    if (dense) {
      embedkit::cpu::update_every_row(update, 0, kRows, ids.data(), grads.data(), skip.data(), count, {true, 5});
    } else {
      embedkit::cpu::update_rows(update, ids.data(), grads.data(), skip.data(), count);
    }

    const ApplyArgs args{{weights.data(), slot0.data(), slot1.data(), dim, kind, s, constraint, 0.5f}, ids.data(),
                         grads.data(), skip.data(), count, dense, 0, kRows, {true, 5}};
    embedkit::testing::replay_apply(args, dense ? kRows : count, plan_groups(1, dim).lanes);

    const bool statistic = kind == OptimizerKind::rowwise_adagrad || constraint == ConstraintKind::max_norm ||
                           constraint == ConstraintKind::unit_norm;
    for (const auto& [got, expected, name] : {std::tuple{&weights, &cpu_weights, "weights"},
                                              std::tuple{&slot0, &cpu_slot0, "slot0"},
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

INSTANTIATE_TEST_SUITE_P(
    Optimizers, OptimizerKernelHost,
    ::testing::Values(Case{OptimizerKind::sgd, ConstraintKind::none, false, 16},
                      Case{OptimizerKind::sgd, ConstraintKind::non_neg, false, 3},
                      Case{OptimizerKind::adagrad, ConstraintKind::none, false, 64},
                      Case{OptimizerKind::rowwise_adagrad, ConstraintKind::none, false, 129},
                      Case{OptimizerKind::adam, ConstraintKind::max_norm, false, 64},
                      Case{OptimizerKind::adam, ConstraintKind::none, true, 8},
                      Case{OptimizerKind::ftrl, ConstraintKind::unit_norm, false, 32}),
    [](const ::testing::TestParamInfo<Case>& param_info) {
      return std::string(embedkit::to_string(param_info.param.kind)) + "_constraint" +
             std::to_string(static_cast<int>(param_info.param.constraint)) + (param_info.param.dense ? "_dense" : "") +
             "_dim" + std::to_string(param_info.param.dim);
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
