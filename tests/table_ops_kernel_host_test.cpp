// The remaining CUDA bodies on the CPU at every coordinate: the initializer's fill, the
// non-finite scan, and the pooled gradient's per-entry rows, against the CPU path: bitwise.
#include <gtest/gtest.h>

#include "cpu/fill.hpp"
#include "cpu/pooled_backward.hpp"
#include "kernels/elementwise_kernel.hpp"
#include "kernels/pooled_grad_kernel.hpp"
#include "kernels/pooled_kernel.hpp"
#include "tests/kernel_host_launch.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace {

using namespace embedkit::kernels;
using embedkit::PoolingMode;

std::int64_t element_blocks(std::int64_t count) { return (count + kElementBlockThreads - 1) / kElementBlockThreads; }

TEST(ElementwiseHost, FillInitialIsTheCpuMatrix) {
  for (const auto kind : {embedkit::detail::InitSampler::uniform, embedkit::detail::InitSampler::truncated_normal}) {
    const embedkit::detail::InitSampler sampler{kind, kind == embedkit::detail::InitSampler::uniform ? -0.05 : 0.0,
                                                0.05};
    std::vector<float> cpu(37 * 13), device(cpu.size(), -1.0f);
    embedkit::cpu::fill_initial(cpu.data(), 37, 13, sampler, 99);
    const FillInitialArgs args{device.data(), 37, 13, sampler, 99};
    embedkit::testing::host_launch(element_blocks(37 * 13), kElementBlockThreads,
                                   [&](std::int64_t block, int thread) { fill_initial_body(block, thread, args); });
    EXPECT_EQ(std::memcmp(cpu.data(), device.data(), cpu.size() * sizeof(float)), 0);
  }
}

TEST(ElementwiseHost, NonFiniteRowsAreFlaggedOnce) {
  std::vector<float> rows = {1,
                             2,
                             std::numeric_limits<float>::quiet_NaN(),
                             4,
                             5,
                             std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(),
                             0,
                             3.4e38f,
                             1};
  std::vector<std::uint8_t> skip = {0, 0, 0, 1, 0};  // row 3 was left out before: not flagged again
  rows[6] = 1.0f;                                    // row 3 finite anyway
  const NonFiniteArgs args{rows.data(), 5, 2, skip.data()};
  embedkit::testing::host_launch(1, kElementBlockThreads,
                                 [&](std::int64_t block, int thread) { nonfinite_body(block, thread, args); });
  EXPECT_EQ(skip, (std::vector<std::uint8_t>{0, 2, 2, 1, 0}));
  std::vector<float> fill(10, 0.0f);
  const FillArgs fill_args{fill.data(), 10, 2.5f};
  embedkit::testing::host_launch(1, kElementBlockThreads,
                                 [&](std::int64_t block, int thread) { fill_body(block, thread, fill_args); });
  EXPECT_EQ(fill, std::vector<float>(10, 2.5f));
}

class EntryRowsHost : public ::testing::TestWithParam<PoolingMode> {};

TEST_P(EntryRowsHost, EachEntryGetsWhatTheCpuGivesIt) {
  const PoolingMode mode = GetParam();
  constexpr std::int64_t kRows = 60, kDim = 5;
  std::mt19937_64 rng(static_cast<std::uint64_t>(mode) + 3);
  std::vector<float> weights(kRows * kDim), grad_bags;
  for (auto& w : weights) w = static_cast<float>(static_cast<int>(rng() % 21) - 10) / 4.0f;  // ties happen
  std::vector<std::int64_t> offsets = {0};
  for (int bag = 0; bag < 40; ++bag) offsets.push_back(offsets.back() + static_cast<std::int64_t>(rng() % 7));
  const std::int64_t bags = static_cast<std::int64_t>(offsets.size()) - 1, entries = offsets.back();
  std::vector<std::int64_t> ids(static_cast<std::size_t>(entries));
  const embedkit::detail::Padding kPadding{true, 4};
  for (auto& id : ids) id = rng() % 10 == 0 ? kPadding.id : static_cast<std::int64_t>(rng() % kRows);
  std::vector<float> sample_weights;
  if (mode != PoolingMode::max) {
    for (std::int64_t j = 0; j < entries; ++j) sample_weights.push_back(static_cast<float>(rng() % 8) / 3.0f);
  }
  for (std::int64_t i = 0; i < bags * kDim; ++i)
    grad_bags.push_back(static_cast<float>(static_cast<int>(rng() % 200) - 100) / 7.0f);
  const float* w = sample_weights.empty() ? nullptr : sample_weights.data();
  const embedkit::detail::PooledBatch<std::int64_t> batch{ids.data(), offsets.data(), bags, w, mode, kPadding};

  std::vector<float> expected(static_cast<std::size_t>(entries * kDim), 0.0f);
  std::vector<std::int64_t> bag_of(static_cast<std::size_t>(entries));
  if (mode == PoolingMode::max) {
    std::vector<std::int64_t> argmax(static_cast<std::size_t>(bags * kDim));
    embedkit::cpu::pooled_argmax(weights.data(), kRows, kDim, batch, argmax.data());
    for (std::int64_t b = 0; b < bags; ++b) {
      for (std::int64_t c = 0; c < kDim; ++c) {
        if (argmax[b * kDim + c] >= 0) expected[argmax[b * kDim + c] * kDim + c] = grad_bags[b * kDim + c];
      }
    }
  } else {
    std::vector<float> scales(static_cast<std::size_t>(entries));
    embedkit::cpu::pooled_entry_scales(batch, scales.data(), bag_of.data());
    for (std::int64_t j = 0; j < entries; ++j) {
      for (std::int64_t c = 0; c < kDim; ++c) expected[j * kDim + c] = grad_bags[bag_of[j] * kDim + c] * scales[j];
    }
  }
  // The argmax the max mode's rows follow comes from the forward kernel's body, as on the device.
  std::vector<float> pooled(static_cast<std::size_t>(bags * kDim));
  std::vector<std::int64_t> recorded(pooled.size(), -7);
  if (mode == PoolingMode::max) {
    const embedkit::kernels::PooledPlan forward = embedkit::kernels::plan_pooled(bags, kDim, false);
    const embedkit::kernels::PooledArgs<std::int64_t> forward_args{weights.data(), kRows,   kDim,           batch,
                                                                   pooled.data(),  nullptr, recorded.data()};
    embedkit::testing::host_launch(forward.groups.blocks, forward.groups.threads(),
                                   [&](std::int64_t block, int thread) {
                                     pooled_body(block, thread, forward, forward_args);
                                   });
  }
  std::vector<float> rows(expected.size(), -7.0f);
  const GroupPlan plan = plan_groups(bags, kDim);
  const EntryRowsArgs<std::int64_t> args{mode == PoolingMode::max ? recorded.data() : nullptr, kDim, batch,
                                         grad_bags.data(), rows.data()};
  embedkit::testing::host_launch(plan.blocks, plan.threads(),
                                 [&](std::int64_t block, int thread) { entry_rows_body(block, thread, plan, args); });
  EXPECT_EQ(std::memcmp(rows.data(), expected.data(), rows.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, EntryRowsHost,
                         ::testing::Values(PoolingMode::sum, PoolingMode::mean, PoolingMode::max, PoolingMode::sqrtn));

}  // namespace
