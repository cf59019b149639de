// The output allocator (src/core/output_blocks.hpp) and Buffer (include/embedkit/buffer.hpp):
// reuse of freed large blocks, its bounds, ownership handed on, and lookups that write every
// element of a recycled block full of stale values.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "core/output_blocks.hpp"
#include "tests/support/reference.hpp"
#include "tests/support/tables.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

namespace {

using embedkit::Buffer;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::PoolingMode;
using embedkit::Status;
using embedkit::detail::OutputBlocks;

constexpr std::size_t kMiB = std::size_t{1} << 20;

TEST(OutputBlocks, AFreedBlockServesTheNextRequestOfItsSize) {
  OutputBlocks blocks(64 * kMiB);
  void* first = blocks.acquire(3 * kMiB + 5);
  std::memset(first, 1, 3 * kMiB + 5);
  blocks.release(first, 3 * kMiB + 5);
  EXPECT_EQ(blocks.stats().cached_blocks, 1u);
  void* second = blocks.acquire(3 * kMiB);  // rounds to the same granules
  EXPECT_EQ(second, first);
  EXPECT_EQ(blocks.stats().reused, 1u);
  EXPECT_EQ(blocks.stats().mapped, 1u);
  EXPECT_EQ(blocks.stats().cached_blocks, 0u);
  blocks.release(second, 3 * kMiB);
}

TEST(OutputBlocks, ABlockMoreThanTwiceTheRequestIsNotHandedOut) {
  OutputBlocks blocks(64 * kMiB);
  void* big = blocks.acquire(8 * kMiB);
  blocks.release(big, 8 * kMiB);
  void* small = blocks.acquire(2 * kMiB);
  EXPECT_NE(small, big);
  void* half = blocks.acquire(4 * kMiB);  // exactly half: still served
  EXPECT_EQ(half, big);
  blocks.release(small, 2 * kMiB);
  blocks.release(half, 4 * kMiB);  // released with the size asked for: cached at its own, 8 MiB
  EXPECT_EQ(blocks.stats().cached_bytes, 8 * kMiB + 2 * kMiB);
  EXPECT_EQ(blocks.acquire(7 * kMiB), big);  // and serves a request it could not serve at 4 MiB
  blocks.release(big, 7 * kMiB);
  EXPECT_EQ(blocks.stats().cached_bytes, 8 * kMiB + 2 * kMiB);
}

TEST(OutputBlocks, TheSmallestFittingBlockIsTaken) {
  OutputBlocks blocks(64 * kMiB);
  void* a = blocks.acquire(6 * kMiB);
  void* b = blocks.acquire(4 * kMiB);
  blocks.release(a, 6 * kMiB);
  blocks.release(b, 4 * kMiB);
  EXPECT_EQ(blocks.acquire(4 * kMiB), b);
  EXPECT_EQ(blocks.acquire(4 * kMiB), a);
  blocks.release(a, 6 * kMiB);
  blocks.release(b, 4 * kMiB);
}

TEST(OutputBlocks, TheCapacityBoundsTheCachedBytesOldestOutFirst) {
  OutputBlocks blocks(5 * kMiB);
  void* a = blocks.acquire(2 * kMiB);
  void* b = blocks.acquire(2 * kMiB);
  void* c = blocks.acquire(2 * kMiB);
  blocks.release(a, 2 * kMiB);
  blocks.release(b, 2 * kMiB);
  blocks.release(c, 2 * kMiB);  // 6 MiB > 5: a goes
  EXPECT_EQ(blocks.stats().cached_bytes, 4 * kMiB);
  EXPECT_EQ(blocks.acquire(2 * kMiB), b);  // equal sizes: the first cached of those left
  void* larger_than_capacity = blocks.acquire(6 * kMiB);
  blocks.release(larger_than_capacity, 6 * kMiB);  // never cached
  EXPECT_EQ(blocks.stats().cached_bytes, 2 * kMiB);
  blocks.set_capacity(0);
  EXPECT_EQ(blocks.stats().cached_bytes, 0u);
  EXPECT_EQ(blocks.stats().cached_blocks, 0u);
  blocks.release(b, 2 * kMiB);
  EXPECT_EQ(blocks.stats().cached_blocks, 0u);
}

TEST(OutputBlocks, AtMostSixteenBlocksAreKept) {
  OutputBlocks blocks(std::size_t{1} << 40);
  std::vector<void*> held;
  for (int i = 0; i < 20; ++i) held.push_back(blocks.acquire(kMiB));
  for (void* block : held) blocks.release(block, kMiB);
  EXPECT_EQ(blocks.stats().cached_blocks, OutputBlocks::kMaxCachedBlocks);
}

TEST(OutputBlocks, ThreadsAcquireAndReleaseWithoutSharingABlock) {
  OutputBlocks blocks(16 * kMiB);
  std::atomic<int> clashes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::size_t bytes = kMiB * static_cast<std::size_t>(1 + (i + t) % 3);
        auto* data = static_cast<unsigned char*>(blocks.acquire(bytes));
        const auto mark = static_cast<unsigned char>(t + 1);
        std::memset(data, mark, bytes);
        for (std::size_t k = 0; k < bytes; k += 4096) {
          if (data[k] != mark) clashes.fetch_add(1);
        }
        blocks.release(data, bytes);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(clashes.load(), 0);
}

TEST(OutputBlocks, MappedBlocksAreAlignedAndSmallOnesToo) {
  for (const std::size_t bytes : {std::size_t{4}, std::size_t{1000}, kMiB - 1, kMiB, 5 * kMiB + 3}) {
    void* data = embedkit::detail::allocate_output(bytes, 1);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(data) % 64, 0u) << bytes;
    embedkit::detail::free_output(data, bytes);
  }
  EXPECT_EQ(embedkit::detail::allocate_output(0, 4), nullptr);
  embedkit::detail::free_output(nullptr, 123);
}

TEST(OutputBlocks, AnOverflowingSizeIsOutOfMemory) {
  try {
    embedkit::detail::allocate_output(std::numeric_limits<std::size_t>::max() / 2, 4);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_memory);
    EXPECT_NE(std::string(e.what()).find("cannot be allocated"), std::string::npos) << e.what();
  }
}

// Under AddressSanitizer the cache poisons what it holds and the tail of what it hands out.
#if defined(__SANITIZE_ADDRESS__)
#define EMBEDKIT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBEDKIT_TEST_ASAN 1
#endif
#endif
#if defined(EMBEDKIT_TEST_ASAN)
TEST(OutputBlocksDeathTest, AddressSanitizerSeesPastTheEndAndAfterRelease) {
  OutputBlocks blocks(64 * kMiB);
  EXPECT_DEATH(
      {
        auto* data = static_cast<volatile char*>(blocks.acquire(kMiB + 1));
        data[kMiB + 8] = 1;
      },
      "use-after-poison");
  EXPECT_DEATH(
      {
        auto* data = static_cast<volatile char*>(blocks.acquire(2 * kMiB));
        blocks.release(const_cast<char*>(data), 2 * kMiB);
        data[0] = 1;
      },
      "use-after-poison");
}
#endif

TEST(Buffer, BehavesAsAnOwningArray) {
  Buffer<float> zeros(5);
  EXPECT_EQ(zeros, std::vector<float>(5, 0.0f));
  Buffer<float> values{1.0f, 2.0f, 3.0f};
  Buffer<float> copy = values;
  copy[0] = 9.0f;
  EXPECT_EQ(values, (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(copy.front(), 9.0f);
  EXPECT_EQ(copy.back(), 3.0f);
  Buffer<float> moved = std::move(copy);
  EXPECT_TRUE(copy.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(moved.size(), 3u);
  const std::vector<float> as_vector = moved;
  EXPECT_EQ(as_vector, (std::vector<float>{9.0f, 2.0f, 3.0f}));
  const Buffer<float> from_vector = as_vector;
  EXPECT_EQ(from_vector, moved);
  EXPECT_TRUE(Buffer<float>::uninitialized(0).empty());
}

TEST(Buffer, ReleaseHandsTheMemoryOnWithItsDeleter) {
  const std::size_t count = 2 * kMiB / sizeof(float);
  const std::size_t capacity = embedkit::output_cache_capacity();
  embedkit::set_output_cache_capacity(0);  // nothing else cached to be handed out instead
  embedkit::set_output_cache_capacity(capacity);
  Buffer<float> buffer = Buffer<float>::uninitialized(count);
  float* data = buffer.data();
  auto owned = buffer.release();
  EXPECT_TRUE(buffer.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(buffer.data(), nullptr);
  EXPECT_EQ(owned.get(), data);
  EXPECT_EQ(owned.get_deleter().bytes, count * sizeof(float));
  owned.reset();  // back to the process's cache: the next buffer of that size reuses it
  EXPECT_EQ(Buffer<float>::uninitialized(count).data(), data);
}

// A recycled block still holds the last output's values: every lookup must write every element
// (padding rows, ids out of range, empty bags), or stale numbers would leak into the result.
TEST(Buffer, LookupsIntoARecycledBlockWriteEveryElement) {
  namespace reference = embedkit::testing::reference;
  constexpr std::int64_t kRows = 5000, kDim = 64;
  auto config = embedkit::testing::table_config(kRows, kDim, 7, /*padding_idx=*/3, embedkit::BoundsCheck::zero_fill);
  const embedkit::EmbeddingTable table(config);
  const reference::Matrix matrix{table.get_weights().values, kRows, kDim, 3};

  std::mt19937_64 rng(11);
  std::uniform_int_distribution<std::int64_t> pick(-2, kRows + 2);
  std::vector<std::int64_t> ids(16384);
  for (auto& id : ids) id = pick(rng);
  ids[0] = 3;
  ids[1] = kRows;
  // Empties the process's cache but for one block of `count` NaNs, which the next output of that
  // size must then take.
  const auto poisoned_block = [](std::size_t count) {
    const std::size_t capacity = embedkit::output_cache_capacity();
    embedkit::set_output_cache_capacity(0);
    embedkit::set_output_cache_capacity(capacity);
    Buffer<float> stale = Buffer<float>::uninitialized(count);
    std::fill(stale.begin(), stale.end(), std::numeric_limits<float>::quiet_NaN());
    return stale.data();
  };

  const float* stale_rows = poisoned_block(ids.size() * kDim);
  const auto rows = table.lookup(IndexTensor(ids));
  EXPECT_EQ(rows.values.data(), stale_rows);
  EXPECT_EQ(rows.values, reference::lookup(matrix, ids));

  // Bags of 0 to 4 entries: empty ones, padding-only ones, ids outside the table.
  std::vector<std::int64_t> offsets{0};
  for (std::size_t b = 0; offsets.back() < static_cast<std::int64_t>(ids.size()); ++b) {
    offsets.push_back(std::min<std::int64_t>(offsets.back() + static_cast<std::int64_t>((b * 7) % 5),
                                             static_cast<std::int64_t>(ids.size())));
  }
  const std::size_t bags = offsets.size() - 1;
  ASSERT_GE(bags * kDim * sizeof(float), OutputBlocks::kMappedFrom);
  for (const PoolingMode mode : {PoolingMode::sum, PoolingMode::mean, PoolingMode::max, PoolingMode::sqrtn}) {
    const float* stale_bags = poisoned_block(bags * kDim);
    const auto pooled = table.lookup_pooled(IndexTensor(ids), offsets, mode);
    EXPECT_EQ(pooled.values.data(), stale_bags);
    const auto expected = reference::pooled(matrix, ids, offsets, mode, {});
    ASSERT_EQ(pooled.values.size(), expected.values.size());
    for (std::size_t k = 0; k < expected.values.size(); ++k) {
      ASSERT_LE(std::abs(pooled.values[k] - expected.values[k]), expected.bounds[k])
          << embedkit::to_string(mode) << " element " << k;
    }
  }
}

}  // namespace
