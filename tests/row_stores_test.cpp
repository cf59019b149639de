// The CPU row gather with plain and with streamed (non-temporal) stores against a plain reference
// loop, bit for bit, on random ids with duplicates, a hot row, padding, out-of-range and negative
// ids, empty and one-row batches, several thread counts; and the rule that picks the stores.
#include <gtest/gtest.h>

#include "cpu/gather.hpp"
#include "cpu/row_stores.hpp"

#include <omp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace {

using embedkit::cpu::choose_row_stores;
using embedkit::cpu::gather_rows;
using embedkit::cpu::RowStores;

// Floats starting on a cache line, as the streamed stores need.
struct LineAlignedFloats {
  explicit LineAlignedFloats(std::size_t n)
      : data(static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64 + 1) * 64))) {}
  ~LineAlignedFloats() { std::free(data); }
  LineAlignedFloats(const LineAlignedFloats&) = delete;
  LineAlignedFloats& operator=(const LineAlignedFloats&) = delete;
  float* data;
};

constexpr std::int64_t kRows = 211, kPadding = 17;

template <class Index>
std::vector<Index> adversarial_ids(std::int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<Index> ids(static_cast<std::size_t>(count));
  for (auto& id : ids) id = static_cast<Index>(std::uniform_int_distribution<std::int64_t>(0, kRows - 1)(rng));
  for (std::int64_t i = 0; i < count; i += 3) ids[i] = 5;  // a hot row
  if (count > 10) {
    ids[1] = kPadding;
    ids[4] = static_cast<Index>(kRows);  // out of range: zeros
    ids[7] = static_cast<Index>(-3);
    ids[10] = static_cast<Index>(kRows - 1);
  }
  return ids;
}

template <class Index>
void expect_gather_matches_reference(std::int64_t dim, std::int64_t count, RowStores stores, int threads) {
  std::vector<float> weights(static_cast<std::size_t>(kRows * dim));
  std::mt19937 rng(static_cast<unsigned>(dim * 7 + count));
  for (float& w : weights) w = std::uniform_real_distribution<float>(-1, 1)(rng);
  const std::vector<Index> ids = adversarial_ids<Index>(count, static_cast<unsigned>(count));
  std::vector<float> expected(static_cast<std::size_t>(count * dim) + 16, -99.0f);
  for (std::int64_t i = 0; i < count; ++i) {
    const auto id = static_cast<std::int64_t>(ids[i]);
    for (std::int64_t c = 0; c < dim; ++c) {
      const bool zero = id < 0 || id >= kRows || id == kPadding;
      expected[i * dim + c] = zero ? 0.0f : weights[id * dim + c];
    }
  }
  LineAlignedFloats out(expected.size());
  std::fill(out.data, out.data + expected.size(), -99.0f);  // the 16 floats past the end must stay
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  gather_rows(weights.data(), kRows, dim, ids.data(), count, kPadding, out.data, stores);
  omp_set_num_threads(saved);
  EXPECT_EQ(std::memcmp(out.data, expected.data(), expected.size() * sizeof(float)), 0)
      << "dim " << dim << ", " << count << " rows, " << (stores == RowStores::streaming ? "streamed" : "cached")
      << ", " << threads << " threads";
}

TEST(RowStores, StreamedAndCachedGathersMatchReference) {
  std::vector<RowStores> kinds = {RowStores::cached};
  if (embedkit::cpu::streaming_stores_available()) kinds.push_back(RowStores::streaming);
  for (const RowStores stores : kinds) {
    for (const std::int64_t dim : {192, 256, 512}) {
      for (const std::int64_t count : {0, 1, 13, 1000}) {  // 1000 rows run in parallel
        for (const int threads : {1, 2, 3}) {
          expect_gather_matches_reference<std::int64_t>(dim, count, stores, threads);
          expect_gather_matches_reference<std::int32_t>(dim, count, stores, threads);
        }
      }
    }
  }
}

TEST(RowStores, CachedStoresServeAnyRowLength) {
  for (const std::int64_t dim : {1, 3, 16, 64, 200}) {
    expect_gather_matches_reference<std::int64_t>(dim, 1000, RowStores::cached, 2);
  }
}

TEST(RowStores, StreamsOnlyLongWholeLineRowsFromALineIntoAnOutputBeyondTheCache) {
  LineAlignedFloats buffer(64);
  const float* aligned = buffer.data;
  constexpr std::int64_t kCache = 1 << 20;
  const std::int64_t beyond = kCache / (256 * 4) + 1, within = kCache / (256 * 4);
  const RowStores streaming = embedkit::cpu::streaming_stores_available() ? RowStores::streaming : RowStores::cached;
  EXPECT_EQ(choose_row_stores(aligned, 256, beyond, kCache), streaming);
  EXPECT_EQ(choose_row_stores(aligned, 192, kCache, kCache), streaming);  // 768 bytes: the shortest streamed row
  EXPECT_EQ(choose_row_stores(aligned, 256, within, kCache), RowStores::cached);  // fits the cache
  EXPECT_EQ(choose_row_stores(aligned + 4, 256, beyond, kCache), RowStores::cached);  // 16 bytes off a line
  EXPECT_EQ(choose_row_stores(aligned, 176, kCache, kCache), RowStores::cached);  // 704 bytes: too short
  EXPECT_EQ(choose_row_stores(aligned, 200, kCache, kCache), RowStores::cached);  // 800 bytes: not whole lines
  EXPECT_EQ(choose_row_stores(aligned, 64, kCache, kCache), RowStores::cached);  // short rows measured slower
  EXPECT_EQ(choose_row_stores(aligned, 0, kCache, kCache), RowStores::cached);
  EXPECT_GT(embedkit::cpu::last_level_cache_bytes(), 0);
}

}  // namespace
