#pragma once
// The output allocator behind Buffer (include/embedkit/buffer.hpp): large blocks are mapped from
// the system and, once freed, kept in a bounded cache for the next output of a similar size, so a
// loop that gets a fresh output every step reuses mapped pages instead of faulting new ones in.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace embedkit::detail {

class OutputBlocks {
 public:
  /// Blocks from this size on are mapped and cached; smaller ones come from operator new.
  static constexpr std::size_t kMappedFrom = std::size_t{1} << 20;
  /// Mapped sizes are rounded up to this, so outputs of nearly equal sizes share blocks.
  static constexpr std::size_t kGranule = std::size_t{64} << 10;
  /// A cached block serves a request at least this fraction of its size (no 1 GiB block for 1 MiB).
  static constexpr std::size_t kMaxWasteFactor = 2;
  /// At most this many freed blocks are kept, whatever their bytes.
  static constexpr std::size_t kMaxCachedBlocks = 16;
  static constexpr std::size_t kDefaultCapacity = std::size_t{1} << 30;

  struct Stats {
    std::size_t cached_bytes = 0;
    std::size_t cached_blocks = 0;
    std::uint64_t reused = 0;  // requests served from the cache
    std::uint64_t mapped = 0;  // requests that mapped a new block
  };

  explicit OutputBlocks(std::size_t capacity) : capacity_(capacity) {}
  OutputBlocks(const OutputBlocks&) = delete;
  OutputBlocks& operator=(const OutputBlocks&) = delete;
  ~OutputBlocks();

  /// The process's allocator, its capacity from EMBEDKIT_OUTPUT_CACHE_BYTES when set (a count of
  /// bytes; anything else is ignored with a warning). Never destroyed: frameworks may free outputs
  /// during interpreter shutdown, after static destructors would have run.
  static OutputBlocks& process();

  /// 64-byte aligned memory for `bytes` (> 0). @throws Error(out_of_memory).
  void* acquire(std::size_t bytes);
  /// Takes back a block from acquire(bytes), at the block's own size (a larger cached block may have
  /// served the request): cached when it fits the capacity, else unmapped.
  void release(void* data, std::size_t bytes) noexcept;
  void set_capacity(std::size_t bytes);
  std::size_t capacity() const;
  Stats stats() const;

 private:
  struct Block {
    void* data;
    std::size_t bytes;  // mapped bytes
  };
  static std::size_t mapped_size(std::size_t bytes) noexcept;  // rounded up to whole granules
  void trim_locked(std::vector<Block>& evicted);               // oldest blocks out until within the bounds

  mutable std::mutex mutex_;
  std::size_t capacity_;
  std::vector<Block> free_;                      // oldest first
  std::unordered_map<void*, std::size_t> live_;  // handed-out blocks and their mapped bytes
  std::size_t free_bytes_ = 0;
  std::uint64_t reused_ = 0;
  std::uint64_t mapped_ = 0;
};

}  // namespace embedkit::detail
