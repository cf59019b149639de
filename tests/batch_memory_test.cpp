// The training path allocates in proportion to the batch, never to input_dim: every allocation
// made during a sparse gradient and a train step on a large table is counted here.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

namespace {

std::atomic<bool> counting{false};
std::atomic<std::size_t> largest{0};
std::atomic<std::size_t> total{0};

void record(std::size_t bytes) {
  if (!counting.load()) return;
  total += bytes;
  std::size_t seen = largest.load();
  while (bytes > seen && !largest.compare_exchange_weak(seen, bytes)) {
  }
}

}  // namespace

// Replacing the global allocation functions here also replaces them for libembedkit.so.
void* operator new(std::size_t bytes) {
  record(bytes);
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

// The library's table and scratch buffers come from aligned_alloc: counted too, then forwarded to
// the C library's own.
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t bytes) {
  using AlignedAlloc = void* (*)(std::size_t, std::size_t);
  static const auto next = reinterpret_cast<AlignedAlloc>(dlsym(RTLD_NEXT, "aligned_alloc"));
  record(bytes);
  return next(alignment, bytes);
}

// Blocks of 1 MiB and up (outputs, step buffers) are mapped by the library's output allocator:
// anonymous mappings are counted too.
extern "C" void* mmap(void* address, std::size_t bytes, int protection, int flags, int fd, off_t offset) {
  using Mmap = void* (*)(void*, std::size_t, int, int, int, off_t);
  static const auto next = reinterpret_cast<Mmap>(dlsym(RTLD_NEXT, "mmap"));
  if ((flags & MAP_ANONYMOUS) != 0) record(bytes);
  return next(address, bytes, protection, flags, fd, offset);
}

namespace {

// With the output cache off, every block a call needs is mapped during that call, and counted.
class BatchMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    capacity_ = embedkit::output_cache_capacity();
    embedkit::set_output_cache_capacity(0);
    largest = 0;
    total = 0;
  }
  void TearDown() override { embedkit::set_output_cache_capacity(capacity_); }

 private:
  std::size_t capacity_ = 0;
};

TEST_F(BatchMemory, TrainingAllocatesForTheBatchNotTheTable) {
  embedkit::TableConfig config;
  config.input_dim = 4'000'000;  // 4M x 16 floats = 256 MB of weights, 256 MB of Adagrad state
  config.output_dim = 16;
  config.optimizer = embedkit::OptimizerConfig::defaults(embedkit::OptimizerKind::adagrad);
  embedkit::EmbeddingTable table(config);
  std::vector<std::int64_t> ids(4096);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>((i * 7919) % 4'000'000 / (i % 3 + 1));
  const std::vector<float> grad(ids.size() * 16, 0.5f);
  counting = true;
  const embedkit::SparseGrad sparse = table.sparse_grad(embedkit::IndexTensor(ids), grad);
  table.train_step(embedkit::IndexTensor(ids), grad);
  counting = false;
  EXPECT_FALSE(sparse.unique_ids.empty());
  // The batch is 4096 x 16 floats = 256 KiB; the table is 1000 times that.
  EXPECT_LT(largest.load(), std::size_t{1} << 20) << "largest allocation";
  EXPECT_LT(total.load(), std::size_t{8} << 20) << "all allocations";
  EXPECT_EQ(table.step(), 1);
}

// The counter above sees the output allocator's mappings, so the bound it checks can fail.
TEST_F(BatchMemory, MappedBlocksAreCounted) {
  embedkit::TableConfig config;
  config.input_dim = 1000;
  config.output_dim = 64;
  const embedkit::EmbeddingTable table(config);
  const std::vector<std::int64_t> ids(8192, 7);  // a 2 MiB output
  counting = true;
  const embedkit::Array<float> rows = table.lookup(embedkit::IndexTensor(ids));
  counting = false;
  EXPECT_GE(largest.load(), rows.values.size() * sizeof(float));
}

}  // namespace
