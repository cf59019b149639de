// The CUDA fold's workspace layout (kernels/fold_workspace.hpp), checked on the CPU: every array
// aligned and large enough for the worst batch, and no two arrays that are alive at once sharing a
// byte. The liveness table below is written from sparse_grad.cu's order of steps, independently
// of the planner's regions.
#include <gtest/gtest.h>

#include "kernels/fold_workspace.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using embedkit::kernels::FoldCubBytes;
using embedkit::kernels::FoldWorkspace;
using embedkit::kernels::kFoldAlignment;
using embedkit::kernels::plan_fold_workspace;

// One array of the fold: where it is, how big it must be, and the steps it is alive for
// (0 keys, 1 sort, 2 encode, 3 piece counts and scans, 4 piece layout, 5 piece sums, 6 the bounds
// check's second pass and the combine or the fused step).
struct Array {
  std::string name;
  std::size_t offset;
  std::size_t bytes;
  int first_step;
  int last_step;
};

std::vector<Array> arrays(const FoldWorkspace& w, std::int64_t count, std::int64_t dim) {
  const auto n = static_cast<std::size_t>(count), d = static_cast<std::size_t>(dim);
  return {
      {"keys", w.keys, 8 * n, 0, 1},
      {"positions", w.positions, 8 * n, 0, 1},
      {"sorted keys", w.sorted_keys, 8 * n, 1, 2},
      {"sorted positions", w.sorted_positions, 8 * n, 1, 5},
      {"cub scratch", w.cub_scratch, w.cub_scratch_bytes, 1, 3},
      {"unique", w.unique, 8 * n, 2, 6},  // copied out after encode; kept to the end for safety
      {"run counts", w.run_counts, 8 * n, 2, 3},
      {"run total and flag", w.run_total, 16, 0, 2},
      {"piece counts", w.piece_counts, 8 * n, 3, 3},
      {"run begin", w.run_begin, 8 * (n + 1), 3, 4},
      {"first piece", w.first_piece, 8 * (n + 1), 3, 6},
      {"piece begin", w.piece_begin, 8 * n, 4, 5},
      {"piece end", w.piece_end, 8 * n, 4, 5},
      {"piece sums", w.piece_sums, 4 * n * d, 5, 6},
      {"bounds check tallies", w.piece_end, 16, 6, 6},  // the second pass, once the pieces are summed
  };
}

class FoldWorkspaceLayout : public ::testing::TestWithParam<std::int64_t> {};

TEST_P(FoldWorkspaceLayout, ArraysAreAlignedLargeEnoughAndNeverShareBytesWhileAlive) {
  const std::int64_t count = GetParam();
  for (const std::int64_t dim : {1, 3, 64, 129}) {
    const FoldCubBytes cub{static_cast<std::size_t>(count) * 16 + 511, 3000, 700};
    const FoldWorkspace w = plan_fold_workspace(count, dim, cub);
    EXPECT_GE(w.cub_scratch_bytes, cub.sort);
    EXPECT_GE(w.cub_scratch_bytes, cub.encode);
    EXPECT_GE(w.cub_scratch_bytes, cub.scan);
    const std::vector<Array> all = arrays(w, count, dim);
    for (const Array& a : all) {
      EXPECT_EQ(a.offset % kFoldAlignment, 0u) << a.name;
      EXPECT_LE(a.offset + a.bytes, w.bytes) << a.name << " runs past the workspace";
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
      for (std::size_t j = i + 1; j < all.size(); ++j) {
        const Array& a = all[i];
        const Array& b = all[j];
        const bool alive_together = a.first_step <= b.last_step && b.first_step <= a.last_step;
        const bool overlap = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
        EXPECT_FALSE(alive_together && overlap)
            << a.name << " and " << b.name << " at count " << count << ", dim " << dim;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Counts, FoldWorkspaceLayout, ::testing::Values(1, 2, 31, 32, 33, 1000, 1 << 20));

TEST(FoldWorkspace, GrowsWithTheBatchAndSharesRegionsWhoseLivesDoNotOverlap) {
  const FoldWorkspace small = plan_fold_workspace(1000, 64, {});
  const FoldWorkspace large = plan_fold_workspace(2000, 64, {});
  EXPECT_GT(large.bytes, small.bytes);
  // Four id regions, two scans and the piece sums: 48 bytes and a row a position, plus alignment.
  EXPECT_LE(small.bytes, 1000u * (48 + 4 * 64) + 16 * kFoldAlignment);
  EXPECT_EQ(small.unique, small.keys);
  EXPECT_EQ(small.piece_end, small.positions);
  EXPECT_EQ(small.piece_begin, small.sorted_keys);
  // An empty batch still has a valid, non-empty layout.
  EXPECT_GT(plan_fold_workspace(0, 8, {}).bytes, 0u);
}

}  // namespace
