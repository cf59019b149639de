#include "id_streams.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace embedkit::bench {
namespace {

constexpr std::uint64_t kSpreadPrime = 2654435761u;  // a prime above any table size here: a bijection mod rows

std::int64_t spread(std::int64_t rank, std::int64_t rows) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(rank) * kSpreadPrime % static_cast<std::uint64_t>(rows));
}

// Inverse-CDF sampling over the finite support [1, rows]: exact, and fast enough for the sizes here
// (one pow per row to build, one binary search per id).
std::vector<std::int64_t> zipf_ids(double alpha, std::int64_t rows, std::int64_t count, std::mt19937_64& generator) {
  std::vector<double> cumulative(static_cast<std::size_t>(rows));
  double total = 0.0;
  for (std::int64_t k = 0; k < rows; ++k) {
    total += std::pow(static_cast<double>(k + 1), -alpha);
    cumulative[static_cast<std::size_t>(k)] = total;
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
  for (std::int64_t& id : ids) {
    const auto rank = std::upper_bound(cumulative.begin(), cumulative.end(), uniform(generator)) - cumulative.begin();
    id = spread(std::min<std::int64_t>(rank, rows - 1), rows);
  }
  return ids;
}

}  // namespace

std::string IdDistribution::name() const {
  return zipf_alpha == 0.0 ? std::string("uniform") : fmt::format("zipf{}", zipf_alpha);
}

std::vector<std::int64_t> draw_ids(IdDistribution distribution, std::int64_t rows, std::int64_t count,
                                   std::uint64_t seed) {
  std::mt19937_64 generator(seed);
  if (distribution.zipf_alpha != 0.0) return zipf_ids(distribution.zipf_alpha, rows, count, generator);
  std::uniform_int_distribution<std::int64_t> uniform(0, rows - 1);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
  for (std::int64_t& id : ids) id = uniform(generator);
  return ids;
}

std::vector<std::int64_t> bag_offsets(std::int64_t count, std::int64_t bag) {
  std::vector<std::int64_t> offsets;
  offsets.reserve(static_cast<std::size_t>((count + bag - 1) / bag + 1));
  for (std::int64_t start = 0; start < count; start += bag) offsets.push_back(start);
  offsets.push_back(count);
  return offsets;
}

}  // namespace embedkit::bench
