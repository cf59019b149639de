// The CUDA pooled kernel's body, run on the CPU at every launch coordinate, against the CPU pooling:
// bitwise, since both add in position order with the same shared pooling math. The CPU pooling
// compiled for each instruction set this CPU runs (cpu/isa.hpp) gives the same bits.
#include <gtest/gtest.h>

#include "cpu/pooled.hpp"
#include "cpu/pooled_backward.hpp"
#include "kernels/pooled_kernel.hpp"
#include "tests/aligned_floats.hpp"
#include "tests/kernel_host_launch.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using embedkit::PoolingMode;
using embedkit::cpu::Isa;
using embedkit::detail::PooledBatch;
using embedkit::kernels::plan_pooled;
using embedkit::kernels::PooledArgs;
using embedkit::kernels::PooledPlan;
using embedkit::testing::AlignedFloats;

struct Case {
  std::int64_t dim;
  PoolingMode mode;
  bool weighted;
};

class PooledKernelHost : public ::testing::TestWithParam<Case> {};

// Hot ids, duplicates within a bag, ties (row 17 equals row 18), negative rows, padding, an
// out-of-range id under zero_fill, empty bags and a bag of padding only; both the scalar path and,
// where dim allows, the 16-byte path, against the CPU bit for bit.
TEST_P(PooledKernelHost, EveryCoordinateOfBothPathsMatchesTheCpu) {
  const auto [dim, mode, weighted] = GetParam();
  constexpr std::int64_t kRows = 200;
  constexpr embedkit::detail::Padding kPadding{true, 9};
  std::mt19937_64 rng(static_cast<std::uint64_t>(dim) * 7 + static_cast<std::uint64_t>(mode));
  std::vector<float> weights(static_cast<std::size_t>(kRows * dim));
  for (auto& w : weights) w = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 997.0f;
  std::copy_n(weights.begin() + 17 * dim, dim, weights.begin() + 18 * dim);  // a tie in every column
  std::vector<std::int64_t> offsets = {0};
  for (int bag = 0; bag < 70; ++bag) offsets.push_back(offsets.back() + static_cast<std::int64_t>(rng() % 12));
  offsets.push_back(offsets.back());  // an empty last bag
  std::vector<std::int64_t> ids(static_cast<std::size_t>(offsets.back()));
  for (auto& id : ids) id = rng() % 5 == 0 ? 3 : static_cast<std::int64_t>(rng() % kRows);  // 3 is hot
  ASSERT_GT(ids.size(), 20u);
  ids[1] = kPadding.id;
  ids[2] = kRows;  // out of range: a row of zeros, and the flag
  ids[5] = 17, ids[6] = 18, ids[7] = 17;
  offsets.push_back(offsets.back() + 2);  // a bag of padding only
  ids.push_back(kPadding.id);
  ids.push_back(kPadding.id);
  std::vector<float> sample_weights;
  if (weighted) {
    for (std::size_t i = 0; i < ids.size(); ++i) sample_weights.push_back(static_cast<float>(rng() % 9) / 4.0f - 0.5f);
  }
  const std::int64_t bags = static_cast<std::int64_t>(offsets.size()) - 1;
  std::vector<float> expected(static_cast<std::size_t>(bags * dim), -99.0f);  // every column must be written
  const float* w = weighted ? sample_weights.data() : nullptr;
  const PooledBatch<std::int64_t> batch{ids.data(), offsets.data(), bags, w, mode, kPadding};
  embedkit::cpu::pooled_lookup(weights.data(), kRows, dim, batch, expected.data(), Isa::baseline);
  if (embedkit::cpu::supports(Isa::avx2)) {
    std::vector<float> avx2(expected.size(), -99.0f);
    embedkit::cpu::pooled_lookup(weights.data(), kRows, dim, batch, avx2.data(), Isa::avx2);
    EXPECT_EQ(std::memcmp(avx2.data(), expected.data(), avx2.size() * sizeof(float)), 0) << "AVX2 clone";
  }
  std::vector<std::int64_t> expected_argmax(expected.size(), -1);
  if (mode == PoolingMode::max) {
    embedkit::cpu::pooled_argmax(weights.data(), kRows, dim, batch, expected_argmax.data());
  }
  for (const bool aligned : {false, true}) {
    const PooledPlan plan = plan_pooled(bags, dim, aligned);
    EXPECT_EQ(plan.vectorized, aligned && dim % 4 == 0);
    // A caller's output one float past a 16-byte boundary (as a slice of a larger tensor) takes
    // the scalar path, as the launcher plans it.
    AlignedFloats out(expected.size() + 1, 16);
    float* got = aligned ? out.data : out.data + 1;
    std::fill(got, got + expected.size(), -99.0f);
    std::vector<std::int64_t> argmax(expected.size(), -7);
    unsigned int flag = 0;
    const PooledArgs<std::int64_t> args{
        weights.data(), kRows, dim, batch, got, &flag, mode == PoolingMode::max ? argmax.data() : nullptr};
    embedkit::testing::host_launch(plan.groups.blocks, plan.groups.threads(),
                                   [&](std::int64_t block, int thread) { pooled_body(block, thread, plan, args); });
    EXPECT_EQ(std::memcmp(got, expected.data(), expected.size() * sizeof(float)), 0)
        << (plan.vectorized ? "vector" : "scalar") << " path";
    EXPECT_EQ(flag, 1u);
    if (mode == PoolingMode::max) {
      EXPECT_EQ(argmax, expected_argmax) << (plan.vectorized ? "vector" : "scalar");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PooledKernelHost,
                         ::testing::Values(Case{1, PoolingMode::sum, false}, Case{3, PoolingMode::mean, true},
                                           Case{4, PoolingMode::max, false}, Case{8, PoolingMode::sum, true},
                                           Case{16, PoolingMode::sqrtn, true}, Case{64, PoolingMode::mean, false},
                                           Case{64, PoolingMode::max, false}, Case{129, PoolingMode::sum, true},
                                           Case{256, PoolingMode::sqrtn, false}, Case{256, PoolingMode::max, false},
                                           Case{512, PoolingMode::max, false}),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return "dim" + std::to_string(param_info.param.dim) + "_" +
                                  embedkit::to_string(param_info.param.mode) +
                                  (param_info.param.weighted ? "_weighted" : "");
                         });

// The AVX2 clone against the baseline on a batch of many ranges of bags (run by the default team), int32
// ids, every mode it serves, weighted and not, dims with and without a partial tile.
TEST(PooledIsa, TheAvx2CloneGivesTheBaselineBitsOnInt32Ids) {
  if (!embedkit::cpu::supports(Isa::avx2)) GTEST_SKIP() << "this CPU has no AVX2: only the baseline clone runs";
  std::mt19937_64 rng(77);
  constexpr std::int64_t kRows = 3000;
  constexpr embedkit::detail::Padding kPadding{true, 5};
  std::vector<std::int64_t> offsets = {0};
  for (int bag = 0; bag < 1000; ++bag) offsets.push_back(offsets.back() + static_cast<std::int64_t>(rng() % 40));
  const std::int64_t bags = static_cast<std::int64_t>(offsets.size()) - 1;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(offsets.back()));
  for (auto& id : ids)
    id = rng() % 7 == 0 ? static_cast<std::int32_t>(kPadding.id)
                        : static_cast<std::int32_t>(rng() % (kRows + 3));  // some outside
  std::vector<float> sample_weights(ids.size());
  for (auto& w : sample_weights) w = static_cast<float>(static_cast<int>(rng() % 200) - 100) / 37.0f;
  for (const std::int64_t dim : {std::int64_t{64}, std::int64_t{100}}) {
    std::vector<float> weights(static_cast<std::size_t>(kRows * dim));
    for (auto& w : weights) w = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 997.0f;
    for (const PoolingMode mode : {PoolingMode::sum, PoolingMode::mean, PoolingMode::sqrtn}) {
      for (const float* w : {static_cast<const float*>(nullptr), static_cast<const float*>(sample_weights.data())}) {
        std::vector<float> baseline(static_cast<std::size_t>(bags * dim), -99.0f), avx2(baseline.size(), -1.0f);
        const PooledBatch<std::int32_t> batch{ids.data(), offsets.data(), bags, w, mode, kPadding};
        embedkit::cpu::pooled_lookup(weights.data(), kRows, dim, batch, baseline.data(), Isa::baseline);
        embedkit::cpu::pooled_lookup(weights.data(), kRows, dim, batch, avx2.data(), Isa::avx2);
        EXPECT_EQ(std::memcmp(avx2.data(), baseline.data(), avx2.size() * sizeof(float)), 0)
            << "dim " << dim << " " << embedkit::to_string(mode) << (w != nullptr ? " weighted" : "");
      }
    }
  }
}

TEST(PooledKernelPlan, VectorizesExactlyWhenRowsAreWholeAlignedVectors) {
  EXPECT_TRUE(plan_pooled(10, 64, true).vectorized);
  EXPECT_FALSE(plan_pooled(10, 64, false).vectorized);
  EXPECT_FALSE(plan_pooled(10, 66, true).vectorized);
  EXPECT_EQ(plan_pooled(10, 64, true).groups.lanes, 16);   // 16 vectors a row
  EXPECT_EQ(plan_pooled(10, 64, false).groups.lanes, 32);  // 64 floats a row
  EXPECT_EQ(plan_pooled(10, 8, true).groups.lanes, 4);
  EXPECT_EQ(plan_pooled(1000, 256, true).groups.blocks, 1000 / plan_pooled(1000, 256, true).groups.groups_per_block);
}

TEST(PooledKernelFlag, StaysDownWhenEveryIdIsInRange) {
  const std::vector<float> weights(4 * 4, 1.0f);
  const std::vector<std::int64_t> ids = {0, 3, 2}, offsets = {0, 2, 3};
  std::vector<float> out(2 * 4);
  unsigned int flag = 0;
  const PooledPlan plan = plan_pooled(2, 4, true);
  const PooledArgs<std::int64_t> args{
      weights.data(), 4, 4, {ids.data(), offsets.data(), 2, nullptr, PoolingMode::sum, {}}, out.data(), &flag, nullptr};
  embedkit::testing::host_launch(plan.groups.blocks, plan.groups.threads(),
                                 [&](std::int64_t block, int thread) { pooled_body(block, thread, plan, args); });
  EXPECT_EQ(flag, 0u);
  EXPECT_EQ(out, std::vector<float>({2, 2, 2, 2, 1, 1, 1, 1}));
}

// Without a padding_idx, id -1 is an id outside the table like any other (docs/reliability.md,
// round two, item 12): the kernel raises the flag and pools it as a row of zeros that counts in
// mean's denominator and in max, as the CPU does; with -1 as "no padding" it was skipped before.
TEST(PooledKernelFlag, RisesForIdMinusOneWithoutPadding) {
  std::vector<float> weights(4 * 4);
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = -1.0f - static_cast<float>(i);  // all negative
  const std::vector<std::int64_t> ids = {-1, 3}, offsets = {0, 2};
  for (const PoolingMode mode : {PoolingMode::mean, PoolingMode::max}) {
    for (const bool aligned : {false, true}) {
      std::vector<float> out(4, -99.0f), expected(4, -99.0f);
      unsigned int flag = 0;
      const PooledPlan plan = plan_pooled(1, 4, aligned);
      const PooledBatch<std::int64_t> batch{ids.data(), offsets.data(), 1, nullptr, mode, {}};
      const PooledArgs<std::int64_t> args{weights.data(), 4, 4, batch, out.data(), &flag, nullptr};
      embedkit::testing::host_launch(plan.groups.blocks, plan.groups.threads(),
                                     [&](std::int64_t block, int thread) { pooled_body(block, thread, plan, args); });
      EXPECT_EQ(flag, 1u) << embedkit::to_string(mode);
      for (int c = 0; c < 4; ++c) {
        const float row = weights[12 + static_cast<std::size_t>(c)];
        EXPECT_EQ(out[static_cast<std::size_t>(c)], mode == PoolingMode::max ? 0.0f : row / 2.0f)
            << embedkit::to_string(mode) << " column " << c;
      }
      embedkit::cpu::pooled_lookup(weights.data(), 4, 4, batch, expected.data(), Isa::baseline);
      EXPECT_EQ(out, expected) << embedkit::to_string(mode);
    }
  }
}

}  // namespace
