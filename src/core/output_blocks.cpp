#include "core/output_blocks.hpp"

#include <embedkit/buffer.hpp>
#include <embedkit/status.hpp>

#include "core/expects.hpp"
#include "core/log.hpp"

#include <pthread.h>
#include <sys/mman.h>

// Under AddressSanitizer, cached blocks are poisoned and a handed-out block is addressable only up
// to the bytes asked for: a use after release or a write past the end is reported as it would be
// for malloc'd memory, although the block stays mapped.
#if defined(__SANITIZE_ADDRESS__)
#define EMBEDKIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBEDKIT_ASAN 1
#endif
#endif
#if defined(EMBEDKIT_ASAN)
#include <sanitizer/asan_interface.h>
#define EMBEDKIT_POISON(data, bytes) ASAN_POISON_MEMORY_REGION((data), (bytes))
#define EMBEDKIT_UNPOISON(data, bytes) ASAN_UNPOISON_MEMORY_REGION((data), (bytes))
#else
#define EMBEDKIT_POISON(data, bytes) ((void)(data), (void)(bytes))
#define EMBEDKIT_UNPOISON(data, bytes) ((void)(data), (void)(bytes))
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string_view>

namespace embedkit::detail {

namespace {

constexpr std::align_val_t kSmallAlignment{64};

std::size_t capacity_from_environment() {
  const char* text = std::getenv("EMBEDKIT_OUTPUT_CACHE_BYTES");
  if (text == nullptr) return OutputBlocks::kDefaultCapacity;
  const std::string_view value(text);
  std::size_t bytes = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), bytes);
  if (error != std::errc() || end != value.data() + value.size() || value.empty()) {
    logger().warn("EMBEDKIT_OUTPUT_CACHE_BYTES='{}' is not a count of bytes; the output cache keeps {} bytes", value,
                  OutputBlocks::kDefaultCapacity);
    return OutputBlocks::kDefaultCapacity;
  }
  return bytes;
}

void unmap(const void* data, std::size_t bytes) noexcept {
  EMBEDKIT_UNPOISON(data, bytes);  // a later mapping at this address must not inherit the poison
  ::munmap(const_cast<void*>(data), bytes);
}

// The block's first `bytes` addressable, the rest of its `mapped` bytes poisoned.
void* hand_out(void* data, std::size_t bytes, std::size_t mapped) noexcept {
  EMBEDKIT_UNPOISON(data, bytes);
  EMBEDKIT_POISON(static_cast<char*>(data) + bytes, mapped - bytes);
  return data;
}

}  // namespace

OutputBlocks::~OutputBlocks() {
  for (const Block& block : free_) unmap(block.data, block.bytes);
}

OutputBlocks& OutputBlocks::process() {
  static OutputBlocks* const blocks = [] {
    auto* created = new OutputBlocks(capacity_from_environment());
    // A fork() while another thread holds the lock (inside a release, say) would leave the child's
    // lock held forever: the forking thread takes it first and both sides let go after.
    (void)pthread_atfork([] { process().mutex_.lock(); }, [] { process().mutex_.unlock(); },
                         [] { process().mutex_.unlock(); });
    return created;
  }();
  return *blocks;
}

std::size_t OutputBlocks::mapped_size(std::size_t bytes) noexcept {
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

void* OutputBlocks::acquire(std::size_t bytes) {
  EMBEDKIT_EXPECTS(bytes <= std::numeric_limits<std::size_t>::max() - kGranule, Status::out_of_memory,
                   "an output of {} bytes cannot be allocated", bytes);
  const std::size_t want = mapped_size(bytes);
  {
    std::lock_guard lock(mutex_);
    auto best = free_.end();
    for (auto block = free_.begin(); block != free_.end(); ++block) {
      const bool fits = block->bytes >= want && block->bytes / kMaxWasteFactor <= want;
      if (fits && (best == free_.end() || block->bytes < best->bytes)) best = block;
    }
    if (best != free_.end()) {
      const Block block = *best;
      live_.try_emplace(block.data, block.bytes);  // first: if it throws, the block stays cached
      free_bytes_ -= block.bytes;
      free_.erase(best);
      ++reused_;
      return hand_out(block.data, bytes, block.bytes);
    }
  }
  void* data = ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EMBEDKIT_EXPECTS(data != MAP_FAILED, Status::out_of_memory, "cannot allocate an output of {} bytes: {}", bytes,
                   std::strerror(errno));
  try {
    std::lock_guard lock(mutex_);
    live_.try_emplace(data, want);
    ++mapped_;
  } catch (const std::bad_alloc&) {
    unmap(data, want);
    throw Error(Status::out_of_memory, fmt::format("cannot allocate an output of {} bytes", bytes));
  }
  return hand_out(data, bytes, want);
}

void OutputBlocks::release(void* data, std::size_t bytes) noexcept {
  // The block's own size, which is more than `bytes` asked for when a larger cached block served
  // the request (acquire() recorded it); unknown blocks, which acquire() never returns, are taken
  // at the size `bytes` rounds to.
  std::size_t mapped = mapped_size(bytes);
  std::vector<Block> evicted;
  {
    std::lock_guard lock(mutex_);
    if (const auto live = live_.find(data); live != live_.end()) {
      mapped = live->second;
      live_.erase(live);
    }
    if (mapped <= capacity_) {
      try {
        free_.push_back({data, mapped});
        EMBEDKIT_POISON(data, mapped);
        free_bytes_ += mapped;
        data = nullptr;
      } catch (const std::bad_alloc&) {
        // No room to remember the block: unmap it below instead.
      }
    }
    try {
      trim_locked(evicted);
    } catch (const std::bad_alloc&) {
      // The evicted list could not grow: what is cached stays until the next release or trim.
    }
  }
  if (data != nullptr) unmap(data, mapped);
  for (const Block& block : evicted) unmap(block.data, block.bytes);
}

void OutputBlocks::trim_locked(std::vector<Block>& evicted) {
  std::size_t drop = 0;
  std::size_t bytes = free_bytes_;
  while (drop < free_.size() && (bytes > capacity_ || free_.size() - drop > kMaxCachedBlocks)) {
    bytes -= free_[drop].bytes;
    ++drop;
  }
  evicted.insert(evicted.end(), free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(drop));
  free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(drop));
  free_bytes_ = bytes;
}

void OutputBlocks::set_capacity(std::size_t bytes) {
  std::vector<Block> evicted;
  evicted.reserve(kMaxCachedBlocks + 1);  // trim_locked cannot then fail once the capacity changed
  {
    std::lock_guard lock(mutex_);
    capacity_ = bytes;
    trim_locked(evicted);
  }
  for (const Block& block : evicted) unmap(block.data, block.bytes);
}

std::size_t OutputBlocks::capacity() const {
  std::lock_guard lock(mutex_);
  return capacity_;
}

OutputBlocks::Stats OutputBlocks::stats() const {
  std::lock_guard lock(mutex_);
  return {free_bytes_, free_.size(), reused_, mapped_};
}

void* allocate_output(std::size_t count, std::size_t element_bytes) {
  std::size_t bytes = 0;
  EMBEDKIT_EXPECTS(!__builtin_mul_overflow(count, element_bytes, &bytes), Status::out_of_memory,
                   "an output of {} elements of {} bytes cannot be allocated", count, element_bytes);
  if (bytes == 0) return nullptr;
  try {
    if (bytes >= OutputBlocks::kMappedFrom) return OutputBlocks::process().acquire(bytes);
    return ::operator new(bytes, kSmallAlignment);
  } catch (const std::bad_alloc&) {
    throw Error(Status::out_of_memory, fmt::format("cannot allocate an output of {} bytes", bytes));
  }
}

void free_output(void* data, std::size_t bytes) noexcept {
  if (data == nullptr) return;
  if (bytes >= OutputBlocks::kMappedFrom) {
    OutputBlocks::process().release(data, bytes);
  } else {
    ::operator delete(data, kSmallAlignment);
  }
}

}  // namespace embedkit::detail

namespace embedkit {

void set_output_cache_capacity(std::size_t bytes) { detail::OutputBlocks::process().set_capacity(bytes); }
std::size_t output_cache_capacity() { return detail::OutputBlocks::process().capacity(); }

}  // namespace embedkit
