#pragma once
// What the conformance suites share: the dims they run (multiples of 4, 8 and 16 and not), batches
// with duplicates, a hot row and padding, and the two comparisons: bit for bit, and within a
// reference's error bound.

#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/support/backends.hpp"
#include "tests/support/reference.hpp"
#include "tests/support/tables.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace embedkit::testing::conformance {

// The names every suite uses, here once: each suite's `using namespace conformance` brings them.
using embedkit::BoundsCheck;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::PoolingMode;
using embedkit::SparseGrad;
using embedkit::Status;
using embedkit::testing::backend_name;
using embedkit::testing::OnBackend;
using embedkit::testing::present_backends;

/// Row widths: below a vector, odd, and around multiples of 4, 8 and 16.
inline const std::vector<std::int64_t> kDims = {1, 3, 4, 7, 8, 12, 16, 33, 64};
constexpr std::int64_t kRows = 97;
constexpr std::int64_t kPadding = 5;
constexpr std::int64_t kHot = 11;

/// A config of kRows × dim with a padding_idx, the seed fixed.
inline TableConfig config_of(std::int64_t dim, BoundsCheck bounds = BoundsCheck::error) {
  TableConfig config = table_config(kRows, dim, 21, kPadding, bounds);
  config.max_batch_lookups = 1 << 14;
  return config;
}

/// The table's matrix, as the references read it.
inline reference::Matrix matrix_of(const EmbeddingTable& table) {
  const TableConfig config = table.config();
  return {table.get_weights().values, table.input_dim(), table.output_dim(), config.padding_idx};
}

/// `count` ids: about a third the hot row, some padding, the rest uniform over the table.
template <class Index>
std::vector<Index> random_ids(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Index> ids(count);
  for (auto& id : ids) {
    const auto draw = rng() % 12;
    id = static_cast<Index>(draw < 4 ? kHot : draw == 4 ? kPadding : static_cast<std::int64_t>(rng() % kRows));
  }
  return ids;
}

inline std::vector<float> random_values(std::size_t count, std::uint64_t seed, float low = -1.0f, float high = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> value(low, high);
  std::vector<float> values(count);
  for (auto& v : values) v = value(rng);
  return values;
}

/// CSR offsets of `bags` bags of 0 to max_bag entries (some empty), ending at the entry count.
inline std::vector<std::int64_t> random_offsets(std::size_t bags, std::uint64_t max_bag, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> offsets = {0};
  for (std::size_t b = 0; b < bags; ++b) {
    const auto size = rng() % 5 == 0 ? 0 : static_cast<std::int64_t>(rng() % (max_bag + 1));
    offsets.push_back(offsets.back() + size);
  }
  return offsets;
}

/// Whether two float arrays hold the same bits, naming the first element that differs.
inline ::testing::AssertionResult same_bits(const std::vector<float>& got, const std::vector<float>& expected) {
  if (got.size() != expected.size()) {
    return ::testing::AssertionFailure() << got.size() << " values, expected " << expected.size();
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &expected[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult same_bits(const SparseGrad& got, const SparseGrad& expected) {
  if (got.unique_ids != expected.unique_ids) return ::testing::AssertionFailure() << "different unique ids";
  if (got.dim != expected.dim)
    return ::testing::AssertionFailure() << "dim " << got.dim << ", expected " << expected.dim;
  return same_bits(got.rows, expected.rows);
}

/// Whether every value lies within its bound of the reference's.
inline ::testing::AssertionResult within(const std::vector<float>& got, const reference::Approximate& expected) {
  if (got.size() != expected.values.size()) {
    return ::testing::AssertionFailure() << got.size() << " values, expected " << expected.values.size();
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(got[i] - expected.values[i]) <= expected.bounds[i])) {
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << ", expected " << expected.values[i]
                                           << " within " << expected.bounds[i];
    }
  }
  return ::testing::AssertionSuccess();
}

/// Whether every value is within `relative` × (1 + |expected|) of the reference's.
inline ::testing::AssertionResult close(const std::vector<float>& got, const std::vector<float>& expected,
                                        float relative) {
  if (got.size() != expected.size()) {
    return ::testing::AssertionFailure() << got.size() << " values, expected " << expected.size();
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(got[i] - expected[i]) <= relative * (1.0f + std::abs(expected[i])))) {
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult close(const SparseGrad& got, const SparseGrad& expected, float relative) {
  if (got.unique_ids != expected.unique_ids) return ::testing::AssertionFailure() << "different unique ids";
  return close(got.rows, expected.rows, relative);
}

/// Everything a step may change: weights, each optimizer state array, the step count.
struct TableState {
  std::vector<float> weights;
  std::vector<std::vector<float>> slots;
  std::int64_t step = 0;
};

inline TableState state_of(const EmbeddingTable& table) {
  TableState state{table.get_weights().values, {}, table.step()};
  for (const std::string& name : table.optimizer_state_names())
    state.slots.push_back(table.optimizer_state(name).values);
  return state;
}

inline ::testing::AssertionResult same_bits(const TableState& got, const TableState& expected) {
  if (got.step != expected.step)
    return ::testing::AssertionFailure() << "step " << got.step << ", expected " << expected.step;
  if (auto weights = same_bits(got.weights, expected.weights); !weights) return weights << " (weights)";
  if (got.slots.size() != expected.slots.size()) return ::testing::AssertionFailure() << "different state arrays";
  for (std::size_t s = 0; s < got.slots.size(); ++s) {
    if (auto slot = same_bits(got.slots[s], expected.slots[s]); !slot) return slot << " (state array " << s << ")";
  }
  return ::testing::AssertionSuccess();
}

/// Runs `body` with the id type as its template argument: int32, then int64.
template <class Body>
void for_each_index_type(const Body& body) {
  body(std::int32_t{});
  body(std::int64_t{});
}

}  // namespace embedkit::testing::conformance
