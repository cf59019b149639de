// The GPU's canonical reduction (piece layout, piece sums, combination), run on the CPU at every
// launch coordinate, against the CPU path's reduction of the same grouping: bitwise.
#include <embedkit/detail/summation_order.hpp>

#include <gtest/gtest.h>

#include "cpu/segment_reduce.hpp"
#include "cpu/segments.hpp"
#include "kernels/segment_reduce_kernel.hpp"
#include "tests/kernel_host_launch.hpp"

#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

namespace {

using namespace embedkit::kernels;

class SegmentReduceHost : public ::testing::TestWithParam<std::int64_t> {};

TEST_P(SegmentReduceHost, EveryCoordinateMatchesTheCpuReduction) {
  const std::int64_t dim = GetParam();
  std::mt19937_64 rng(static_cast<std::uint64_t>(dim));
  std::vector<std::int64_t> ids(3000);
  for (auto& id : ids)
    id = rng() % 3 == 0 ? 42 : static_cast<std::int64_t>(rng() % 500);  // a hot id of ~1000 positions
  std::vector<float> grad(ids.size() * static_cast<std::size_t>(dim));
  for (auto& g : grad) g = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 999.0f;
  const embedkit::cpu::Segments segments =
      embedkit::cpu::group_positions(ids.data(), static_cast<std::int64_t>(ids.size()), 500, {true, 7});
  const std::int64_t runs = segments.size();

  std::vector<float> expected(static_cast<std::size_t>(runs * dim));
  embedkit::cpu::reduce_segments(
      segments, dim,
      [&](std::int64_t k, float* acc, bool first) {
        const std::int64_t p = segments.positions[k];
        for (std::int64_t c = 0; c < dim; ++c) acc[c] = first ? grad[p * dim + c] : acc[c] + grad[p * dim + c];
      },
      [](std::int64_t) {}, expected.data());

  // The scan the device does with cub::DeviceScan::ExclusiveSum.
  std::vector<std::int64_t> first_piece(static_cast<std::size_t>(runs + 1), 0);
  for (std::int64_t u = 0; u < runs; ++u) {
    first_piece[u + 1] =
        first_piece[u] + embedkit::detail::sum_piece_count(segments.run_begin[u + 1] - segments.run_begin[u]);
  }
  const std::int64_t pieces = first_piece.back();
  std::vector<std::int64_t> piece_begin(static_cast<std::size_t>(pieces)), piece_end(static_cast<std::size_t>(pieces));
  const PieceLayoutArgs layout{segments.run_begin.data(), first_piece.data(), runs, piece_begin.data(),
                               piece_end.data()};
  embedkit::testing::host_launch((runs + kLayoutBlockThreads - 1) / kLayoutBlockThreads, kLayoutBlockThreads,
                                 [&](std::int64_t block, int thread) { piece_layout_body(block, thread, layout); });
  std::vector<float> piece_sums(static_cast<std::size_t>(pieces * dim)), rows(expected.size(), -1.0f);
  const GroupPlan piece_plan = plan_groups(pieces, dim);
  const PieceSumArgs sums{segments.positions.data(), piece_begin.data(), piece_end.data(), pieces, grad.data(), dim,
                          piece_sums.data()};
  embedkit::testing::host_launch(piece_plan.blocks, piece_plan.threads(), [&](std::int64_t block, int thread) {
    piece_sum_body(block, thread, piece_plan, sums);
  });
  const GroupPlan run_plan = plan_groups(runs, dim);
  const CombineArgs combine{first_piece.data(), runs, piece_sums.data(), dim, rows.data()};
  embedkit::testing::host_launch(run_plan.blocks, run_plan.threads(), [&](std::int64_t block, int thread) {
    combine_body(block, thread, run_plan, combine);
  });
  EXPECT_GT(pieces, runs);  // the hot id really split
  EXPECT_EQ(std::memcmp(rows.data(), expected.data(), rows.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(Dims, SegmentReduceHost, ::testing::Values(1, 3, 4, 16, 64, 129));

}  // namespace
