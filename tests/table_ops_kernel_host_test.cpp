// The remaining CUDA bodies on the CPU at every coordinate: the initializer's fill, the
// non-finite scan, the penalty's chunk sums and the pooled gradient's per-entry rows, against the
// CPU path: bitwise.
#include <gtest/gtest.h>

#include "backend/backends.hpp"
#include "cpu/fill.hpp"
#include "cpu/pooled_backward.hpp"
#include "kernels/elementwise_kernel.hpp"
#include "kernels/penalty_kernel.hpp"
#include "kernels/pooled_grad_kernel.hpp"
#include "kernels/pooled_kernel.hpp"
#include "tests/aligned_floats.hpp"
#include "tests/kernel_host_launch.hpp"
#include "tests/scan_kernel_replay.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
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
  embedkit::testing::replay_nonfinite(NonFiniteArgs{rows.data(), 5, 2, skip.data()});
  EXPECT_EQ(skip, (std::vector<std::uint8_t>{0, 2, 2, 1, 0}));
  std::vector<float> fill(10, 0.0f);
  const FillArgs fill_args{fill.data(), 10, 2.5f};
  embedkit::testing::host_launch(1, kElementBlockThreads,
                                 [&](std::int64_t block, int thread) { fill_body(block, thread, fill_args); });
  EXPECT_EQ(fill, std::vector<float>(10, 2.5f));
}

// The scan's lane groups against the CPU backend's mark_nonfinite, at widths below, at and past a
// group's lanes and the vector width, on aligned and misaligned rows, one bad value anywhere.
TEST(ElementwiseHost, NonFiniteScanFlagsTheRowsTheCpuFlags) {
  embedkit::detail::Backend& cpu = embedkit::detail::cpu_backend();
  std::mt19937_64 rng(26);
  const float kBad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()};
  for (const std::int64_t dim : {1, 3, 4, 5, 8, 16, 31, 32, 33, 64, 100, 128, 129, 256, 300}) {
    for (const std::int64_t count : {1, 7, 33, 300}) {
      for (const std::size_t offset : {std::size_t{0}, std::size_t{1}}) {  // 1: rows 4 bytes past alignment
        SCOPED_TRACE(::testing::Message() << "dim " << dim << ", count " << count << ", offset " << offset);
        const auto cells = static_cast<std::size_t>(count * dim);
        const embedkit::testing::AlignedFloats storage(cells, 64);
        float* rows = storage.data + offset;
        std::uniform_real_distribution<float> value(-3.0e38f, 3.0e38f);  // huge, finite
        for (std::size_t i = 0; i < cells; ++i) rows[i] = value(rng);
        std::vector<std::uint8_t> skip(static_cast<std::size_t>(count), 0);
        for (std::int64_t u = 0; u < count; ++u) {
          const auto r = rng() % 4;
          if (r == 0)
            rows[u * dim + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(dim))] = kBad[rng() % 3];
          if (r == 1) rows[u * dim + dim - 1] = kBad[rng() % 3];  // the row's last column
          if (rng() % 9 == 0) skip[u] = 1;                        // left out before the scan
        }
        std::vector<std::uint8_t> device = skip;
        embedkit::testing::replay_nonfinite(NonFiniteArgs{rows, count, dim, device.data()});

        embedkit::detail::FoldedGrad grad;
        grad.count = count;
        grad.rows = cpu.allocate(cells * sizeof(float), "rows");
        std::memcpy(grad.rows.as<float>(), rows, cells * sizeof(float));
        std::vector<std::uint8_t> host = skip;
        const std::int64_t flagged = cpu.mark_nonfinite(grad, dim, host.data());
        std::int64_t twos = 0;
        for (std::int64_t u = 0; u < count; ++u) {
          // The CPU marks a bad row 1 and counts it; the kernel marks it 2, counted afterwards.
          const std::uint8_t expected = skip[u] != 0 ? skip[u] : host[u] == 1 ? std::uint8_t{2} : std::uint8_t{0};
          EXPECT_EQ(device[u], expected) << "row " << u;
          twos += device[u] == 2 ? 1 : 0;
        }
        EXPECT_EQ(twos, flagged);
      }
    }
  }
}

// The penalty kernel's chunks against the CPU backend's penalty, bitwise: sizes around a tile, a
// chunk and several chunks, aligned and misaligned weights, small, huge and subnormal values.
TEST(PenaltyHost, ChunkSumsAreTheCpusBitForBit) {
  using embedkit::detail::kPenaltyChunk;
  embedkit::detail::Backend& cpu = embedkit::detail::cpu_backend();
  std::mt19937_64 rng(7);
  for (const std::int64_t count : {std::int64_t{1}, std::int64_t{3}, std::int64_t{kPenaltyTile - 1},
                                   std::int64_t{kPenaltyTile}, std::int64_t{kPenaltyTile + 1}, std::int64_t{1000},
                                   kPenaltyChunk - 1, kPenaltyChunk, kPenaltyChunk + 1, 3 * kPenaltyChunk + 4097}) {
    for (const std::size_t offset : {std::size_t{0}, std::size_t{1}, std::size_t{2}}) {
      SCOPED_TRACE(::testing::Message() << "count " << count << ", offset " << offset);
      const embedkit::testing::AlignedFloats storage(static_cast<std::size_t>(count), 64);
      float* weights = storage.data + offset;
      std::uniform_real_distribution<float> small(-1.0f, 1.0f);
      for (std::int64_t i = 0; i < count; ++i) {
        const auto r = rng() % 64;
        weights[i] = r == 0   ? std::numeric_limits<float>::max() * (rng() % 2 == 0 ? 1.0f : -1.0f)
                     : r == 1 ? std::numeric_limits<float>::denorm_min() * static_cast<float>(rng() % 100)
                     : r == 2 ? 1.0e30f * small(rng)
                              : small(rng);
      }
      const std::int64_t chunks = embedkit::detail::penalty_chunks(count);
      for (const auto& [l1, l2] : {std::pair{0.01, 0.001}, std::pair{0.0, 0.5}, std::pair{1e-8, 0.0}}) {
        std::vector<double> partials(static_cast<std::size_t>(chunks), -1.0);
        const PenaltyArgs args{weights,        count, l1, l2, reinterpret_cast<std::uintptr_t>(weights) % 16 == 0,
                               partials.data()};
        EXPECT_TRUE(embedkit::testing::replay_penalty(args));
        double total = 0.0;
        for (std::int64_t k = 0; k < chunks; ++k) {
          // The order written out: the chunk's weights left to right, in double.
          double reference = 0.0;
          for (std::int64_t i = k * kPenaltyChunk; i < std::min(count, (k + 1) * kPenaltyChunk); ++i) {
            const double w = weights[i];
            reference += l1 * std::fabs(w) + l2 * w * w;
          }
          EXPECT_EQ(std::memcmp(&partials[k], &reference, sizeof reference), 0)
              << "chunk " << k << ": " << partials[k] << " vs " << reference;
          total += partials[k];  // the backend adds the chunks in order on the host
        }
        const double on_cpu = cpu.penalty(embedkit::detail::StoredRows{weights}, count, l1, l2);
        EXPECT_EQ(std::memcmp(&total, &on_cpu, sizeof total), 0) << total << " vs " << on_cpu;
      }
    }
  }
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
