// The CUDA pooled kernel's body, run on the CPU at every launch coordinate, against the CPU pooling:
// bitwise, since both add in position order with the same shared pooling math.
#include <gtest/gtest.h>

#include "cpu/pooled.hpp"
#include "kernels/pooled_kernel.hpp"
#include "tests/kernel_host_launch.hpp"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using embedkit::PoolingMode;
using embedkit::kernels::PooledArgs;
using embedkit::kernels::GroupPlan;
using embedkit::kernels::plan_groups;

struct Case {
  std::int64_t dim;
  PoolingMode mode;
  bool weighted;
};

class PooledKernelHost : public ::testing::TestWithParam<Case> {};

TEST_P(PooledKernelHost, EveryCoordinateMatchesTheCpu) {
  const auto [dim, mode, weighted] = GetParam();
  constexpr std::int64_t kRows = 200;
  std::mt19937_64 rng(static_cast<std::uint64_t>(dim) * 7 + static_cast<std::uint64_t>(mode));
  std::vector<float> weights(static_cast<std::size_t>(kRows * dim));
  for (auto& w : weights) w = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 997.0f;
  std::vector<std::int64_t> offsets = {0};
  for (int bag = 0; bag < 70; ++bag) offsets.push_back(offsets.back() + static_cast<std::int64_t>(rng() % 12));
  offsets.push_back(offsets.back());  // an empty last bag
  std::vector<std::int64_t> ids(static_cast<std::size_t>(offsets.back()));
  for (auto& id : ids) id = static_cast<std::int64_t>(rng() % kRows);
  if (ids.size() > 3) {
    ids[1] = 9;        // padding
    ids[2] = kRows;    // out of range, accepted under zero_fill: a row of zeros
  }
  std::vector<float> sample_weights;
  if (weighted) {
    for (std::size_t i = 0; i < ids.size(); ++i) sample_weights.push_back(static_cast<float>(rng() % 9) / 4.0f - 0.5f);
  }
  const std::int64_t bags = static_cast<std::int64_t>(offsets.size()) - 1;
  std::vector<float> expected(static_cast<std::size_t>(bags * dim)), got(expected.size(), -99.0f);
  const float* w = weighted ? sample_weights.data() : nullptr;
  embedkit::cpu::pooled_lookup(weights.data(), kRows, dim, ids.data(), offsets.data(), bags, w, mode, 9,
                               expected.data());
  const GroupPlan plan = plan_groups(bags, dim);
  const PooledArgs<std::int64_t> args{weights.data(), kRows, dim, ids.data(), offsets.data(), bags, w, mode, 9,
                                      got.data()};
  embedkit::testing::host_launch(plan.blocks, plan.threads(),
                                 [&](std::int64_t block, int thread) { pooled_body(block, thread, plan, args); });
  EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PooledKernelHost,
    ::testing::Values(Case{1, PoolingMode::sum, false}, Case{3, PoolingMode::mean, true}, Case{4, PoolingMode::max, false},
                      Case{16, PoolingMode::sqrtn, true}, Case{64, PoolingMode::mean, false},
                      Case{129, PoolingMode::sum, true}, Case{512, PoolingMode::max, false}),
    [](const ::testing::TestParamInfo<Case>& param_info) {
      return "dim" + std::to_string(param_info.param.dim) + "_" + embedkit::to_string(param_info.param.mode) +
             (param_info.param.weighted ? "_weighted" : "");
    });

}  // namespace
