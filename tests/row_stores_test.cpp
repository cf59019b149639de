// The CPU row gather with plain and with streamed (non-temporal) stores against a plain reference
// loop, bit for bit, on random ids with duplicates, a hot row, padding, out-of-range and negative
// ids, empty and one-row batches, several thread counts; and the rule that picks the stores.
#include <gtest/gtest.h>

#include "cpu/gather.hpp"
#include "cpu/row_stores.hpp"
#include "tests/aligned_floats.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

using embedkit::cpu::choose_row_stores;
using embedkit::cpu::gather_rows;
using embedkit::cpu::RowStores;
using embedkit::testing::AlignedFloats;

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

// Gathers into an output `offset` floats past a cache line (0: on one).
template <class Index>
void expect_gather_matches_reference(std::int64_t dim, std::int64_t count, RowStores stores, int threads,
                                     std::int64_t offset = 0) {
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
  AlignedFloats buffer(expected.size() + static_cast<std::size_t>(offset), 64);  // on a cache line
  std::fill(buffer.data, buffer.data + expected.size() + offset, -99.0f);        // the floats around must stay
  float* out = buffer.data + offset;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  gather_rows(weights.data(), kRows, dim, ids.data(), count, {true, kPadding}, out, stores);
  omp_set_num_threads(saved);
  EXPECT_EQ(std::memcmp(out, expected.data(), expected.size() * sizeof(float)), 0)
      << "dim " << dim << ", " << count << " rows, " << (stores == RowStores::streaming ? "streamed" : "cached") << ", "
      << threads << " threads, " << offset << " floats off a line";
  EXPECT_TRUE(std::all_of(buffer.data, out, [](float v) { return v == -99.0f; })) << "wrote before the output";
}

TEST(RowStores, StreamedAndCachedGathersMatchReference) {
  for (const RowStores stores : {RowStores::cached, RowStores::streaming}) {
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

// Streaming asked for where rows cannot be streamed (off a line, not whole lines) gives plain stores.
TEST(RowStores, StreamingFallsBackToCachedWhereRowsCannotStream) {
  for (const std::int64_t offset : {1, 4, 8}) {
    expect_gather_matches_reference<std::int64_t>(256, 1000, RowStores::streaming, 2, offset);
  }
  for (const std::int64_t dim : {1, 3, 20, 200}) {
    expect_gather_matches_reference<std::int64_t>(dim, 1000, RowStores::streaming, 2);
  }
}

TEST(RowStores, StreamsOnlyLongWholeLineRowsFromALineIntoAnOutputBeyondTheCache) {
  AlignedFloats buffer(64, 64);
  const float* aligned = buffer.data;
  constexpr std::int64_t kCache = 1 << 20;
  const std::int64_t beyond = kCache / (256 * 4) + 1, within = kCache / (256 * 4);
#if defined(__SSE2__)
  const RowStores streaming = RowStores::streaming;
#else
  const RowStores streaming = RowStores::cached;  // no streaming stores in this build
#endif
  EXPECT_EQ(choose_row_stores(aligned, 256, beyond, kCache), streaming);
  EXPECT_EQ(choose_row_stores(aligned, 192, kCache, kCache), streaming);  // 768 bytes: the shortest streamed row
  EXPECT_EQ(choose_row_stores(aligned, 256, within, kCache), RowStores::cached);      // fits the cache
  EXPECT_EQ(choose_row_stores(aligned + 4, 256, beyond, kCache), RowStores::cached);  // 16 bytes off a line
  EXPECT_EQ(choose_row_stores(aligned, 176, kCache, kCache), RowStores::cached);      // 704 bytes: too short
  EXPECT_EQ(choose_row_stores(aligned, 200, kCache, kCache), RowStores::cached);      // 800 bytes: not whole lines
  EXPECT_EQ(choose_row_stores(aligned, 64, kCache, kCache), RowStores::cached);       // short rows measured slower
  EXPECT_EQ(choose_row_stores(aligned, 0, kCache, kCache), RowStores::cached);
  EXPECT_GT(embedkit::cpu::last_level_cache_bytes(), 0);
  const bool available = streaming == RowStores::streaming;
  EXPECT_EQ(embedkit::cpu::can_stream_rows(aligned, 16), available);  // one line: streamable, if not chosen
  EXPECT_FALSE(embedkit::cpu::can_stream_rows(aligned + 1, 16));
  EXPECT_FALSE(embedkit::cpu::can_stream_rows(aligned, 8));
  EXPECT_FALSE(embedkit::cpu::can_stream_rows(aligned, 0));
}

}  // namespace
