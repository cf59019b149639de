#pragma once
// What the sharded tests share: the world, Zipf batches every rank can regenerate for any rank (so
// each rank can train the single-process reference on the concatenated batch), and bitwise checks.

#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace embedkit::testing {

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

/// `count` ids in [0, rows) drawn from a Zipf law of exponent 1.1 (hot low ids, duplicates within
/// and across ranks), from a generator keyed by (seed, step, rank).
inline std::vector<std::int64_t> zipf_ids(std::int64_t rows, std::int64_t count, std::uint64_t seed, int step,
                                          int rank) {
  std::vector<double> weights(static_cast<std::size_t>(rows));
  for (std::int64_t k = 0; k < rows; ++k) weights[static_cast<std::size_t>(k)] = 1.0 / std::pow(double(k + 1), 1.1);
  std::discrete_distribution<std::int64_t> zipf(weights.begin(), weights.end());
  std::mt19937_64 generator(seed * 1000003u + static_cast<std::uint64_t>(step) * 1009u +
                            static_cast<std::uint64_t>(rank));
  // Shuffle which ids are hot, so hot rows land on every rank under either split.
  std::vector<std::int64_t> permutation(static_cast<std::size_t>(rows));
  for (std::int64_t k = 0; k < rows; ++k) permutation[static_cast<std::size_t>(k)] = (k * 7919) % rows;
  std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
  for (auto& id : ids) id = permutation[static_cast<std::size_t>(zipf(generator))];
  return ids;
}

/// `count` floats in [-1, 1) keyed by (seed, step, rank).
inline std::vector<float> random_floats(std::size_t count, std::uint64_t seed, int step, int rank) {
  std::mt19937_64 generator(seed * 7919u + static_cast<std::uint64_t>(step) * 31u + static_cast<std::uint64_t>(rank));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (auto& v : values) v = uniform(generator);
  return values;
}

/// Expects `got` and `want` to hold the same bits, naming the first element that differs.
inline void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", the single table has " << want[i]
                    << " (rank " << world_rank() << " of " << world_size() << ")";
      return;
    }
  }
}

/// The rows of `matrix` (rows × width, row-major) that `shard` holds, in its local order.
inline std::vector<float> rows_of(const std::vector<float>& matrix, std::int64_t width, const ShardRows& shard) {
  std::vector<float> rows;
  for (std::int64_t k = 0; k < shard.count; ++k) {
    const auto begin = matrix.begin() + (shard.first + k * shard.stride) * width;
    rows.insert(rows.end(), begin, begin + width);
  }
  return rows;
}

}  // namespace embedkit::testing
