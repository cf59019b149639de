// The CUDA gather kernel's body, run on the CPU at every launch coordinate, against a reference.
#include <gtest/gtest.h>

#include "kernels/gather_kernel.hpp"
#include "tests/aligned_floats.hpp"
#include "tests/kernel_host_launch.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using embedkit::kernels::GatherArgs;
using embedkit::kernels::GatherPlan;
using embedkit::kernels::plan_gather;

using embedkit::testing::AlignedFloats;

struct Case {
  std::int64_t dim;
  bool aligned;
};

class GatherKernelHost : public ::testing::TestWithParam<Case> {};

TEST_P(GatherKernelHost, EveryCoordinateMatchesReference) {
  const auto [dim, aligned] = GetParam();
  constexpr std::int64_t kRows = 97, kCount = 301;
  AlignedFloats weights(static_cast<std::size_t>(kRows * dim), 16);  // as cudaMalloc gives
  std::mt19937 rng(static_cast<unsigned>(dim));
  for (std::size_t i = 0; i < weights.size; ++i) weights.data[i] = std::uniform_real_distribution<float>(-1, 1)(rng);
  std::vector<std::int64_t> ids(kCount);
  for (auto& id : ids) id = std::uniform_int_distribution<std::int64_t>(0, kRows - 1)(rng);
  ids[5] = 13;     // padding
  ids[7] = kRows;  // out of range: zeros and the flag
  ids[9] = -2;
  AlignedFloats out(static_cast<std::size_t>(kCount * dim) + 1, 16);
  float* destination = aligned ? out.data : out.data + 1;  // +1 float breaks 16-byte alignment
  for (std::size_t i = 0; i < static_cast<std::size_t>(kCount * dim); ++i) destination[i] = -9.0f;

  unsigned int flag = 0;
  const GatherPlan plan = plan_gather(kCount, dim, aligned);
  EXPECT_EQ(plan.vectorized, aligned && dim % 4 == 0);
  const GatherArgs<std::int64_t> args{weights.data, kRows, dim, ids.data(), kCount, {true, 13}, destination, &flag};
  embedkit::testing::host_launch(plan.groups.blocks, plan.groups.threads(),
                                 [&](std::int64_t block, int thread) { gather_body(block, thread, plan, args); });

  EXPECT_EQ(flag, 1u);
  for (std::int64_t i = 0; i < kCount; ++i) {
    const bool zero = ids[i] < 0 || ids[i] >= kRows || ids[i] == 13;
    for (std::int64_t c = 0; c < dim; ++c) {
      const float expected = zero ? 0.0f : weights.data[ids[i] * dim + c];
      ASSERT_EQ(destination[i * dim + c], expected) << "row " << i << " column " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dims, GatherKernelHost,
                         ::testing::Values(Case{1, true}, Case{3, true}, Case{4, true}, Case{4, false}, Case{16, true},
                                           Case{64, true}, Case{64, false}, Case{129, true}, Case{512, true}),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return "dim" + std::to_string(param_info.param.dim) +
                                  (param_info.param.aligned ? "_aligned" : "_misaligned");
                         });

TEST(GatherPlan, LaneGroupSizedToRow) {
  EXPECT_EQ(plan_gather(10, 1, true).groups.lanes, 4);
  EXPECT_EQ(plan_gather(10, 16, true).groups.lanes, 4);    // 4 float4 per row
  EXPECT_EQ(plan_gather(10, 16, false).groups.lanes, 16);  // 16 scalars per row
  EXPECT_EQ(plan_gather(10, 64, true).groups.lanes, 16);
  EXPECT_EQ(plan_gather(10, 512, true).groups.lanes, 32);
  const auto plan = plan_gather(1000, 64, true).groups;
  EXPECT_EQ(plan.threads(), embedkit::kernels::kGroupBlockThreads);
  EXPECT_GE(plan.blocks * plan.groups_per_block, 1000);
  EXPECT_LT((plan.blocks - 1) * plan.groups_per_block, 1000);
  EXPECT_EQ(plan_gather(0, 64, true).groups.blocks, 0);
}

}  // namespace
