#pragma once
// The id batches the benchmarks look up: uniform over the table, or Zipf-distributed (a few hot rows
// take most lookups, as in recommender traffic), always with a fixed seed so runs are comparable.

#include <cstdint>
#include <string>
#include <vector>

namespace embedkit::bench {

/// How ids are drawn: uniform when zipf_alpha is 0, else P(rank k) ∝ 1 / k^zipf_alpha.
struct IdDistribution {
  double zipf_alpha = 0.0;

  /// "uniform" or "zipf1.05", as printed in benchmark names.
  std::string name() const;
};

/// `count` ids in [0, rows) drawn from `distribution` with `seed`. Zipf ranks are spread over the
/// table by a fixed permutation (rank · 2654435761 mod rows), so hot rows are not neighbours; the
/// same construction is used by bench/compare_pytorch.py.
std::vector<std::int64_t> draw_ids(IdDistribution distribution, std::int64_t rows, std::int64_t count,
                                   std::uint64_t seed);

/// The CSR offsets of `count` lookups in bags of `bag` (the last bag may be shorter).
std::vector<std::int64_t> bag_offsets(std::int64_t count, std::int64_t bag);

}  // namespace embedkit::bench
