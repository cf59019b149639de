#pragma once
// C++20, host only, no CUDA header: how the CUDA backend copies between pageable host memory and
// the device (copy_from_host / copy_to_host: get_weights, set_weights, checkpoints, migrate),
// written over a small device interface so tests drive it with a fake that defers every copy until
// its event is waited (tests/pinned_staging_test.cpp); the CUDA runtime's interface is
// cuda_staging.hpp's.
//
// A copy goes through a ring of two page-locked chunks, pipelined: to the device, chunk k is
// copied into slot k % 2 on the host while chunk k - 1 travels; to the host, chunk k travels into
// slot k % 2 while chunk k - 1 is copied out. At most two chunks are in flight, a slot is reused
// only after its last copy's event was waited, and a call returns with all its bytes in place and
// nothing left queued on its ring, thrown or not. The pool lends each copier a ring of its own, at
// most `max_rings` at once (further copiers wait for one to come back), and its lock is held only
// to take or return a ring: copies of different tables run concurrently, and the pinned memory is
// bounded by max_rings x 2 x chunk_bytes per device, whatever the size of the tables.

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

namespace embedkit::kernels {

/// A ring's chunk when EMBEDKIT_PINNED_CHUNK_BYTES does not say otherwise.
inline constexpr std::size_t kDefaultStagingChunkBytes = std::size_t{64} << 20;
/// Rings lent at once per device.
inline constexpr int kMaxStagingRings = 4;
/// The smallest chunk a ring is given: small copies (a flag array, a row) do not pin 2 x 64 MiB.
inline constexpr std::size_t kMinStagingSlotBytes = std::size_t{1} << 20;

/// The pool's shape.
struct StagingLimits {
  std::size_t chunk_bytes = kDefaultStagingChunkBytes;  ///< the largest chunk (a ring holds two)
  int max_rings = kMaxStagingRings;                     ///< rings lent at once
  std::size_t min_slot_bytes = kMinStagingSlotBytes;    ///< the smallest chunk a ring is given
};

/// EMBEDKIT_PINNED_CHUNK_BYTES's value as a chunk size: a positive count of bytes, else nullopt.
inline std::optional<std::size_t> parse_staging_chunk_bytes(std::string_view text) {
  std::size_t bytes = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bytes);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || bytes == 0) return std::nullopt;
  return bytes;
}

/// The chunk a ring needs for a copy of `bytes`: the copy in one chunk when it fits in
/// chunk_bytes, rounded up to a power of two (so a ring grows a few times in its life, not at each
/// larger copy) and to at least min_slot_bytes, never above chunk_bytes.
constexpr std::size_t staging_slot_bytes(std::size_t bytes, const StagingLimits& limits) {
  if (bytes >= limits.chunk_bytes) return limits.chunk_bytes;
  std::size_t slot = std::max<std::size_t>(limits.min_slot_bytes, 1);
  while (slot < bytes) slot *= 2;
  return std::min(slot, limits.chunk_bytes);
}

/// `Ops` provides (the copies and the record are queued on `stream` and may throw; the rest as said):
///   using Stream = ...; using Event = ...;
///   void* allocate_host(std::size_t bytes);     page-locked memory; throws when it cannot
///   void free_host(void* data) noexcept;
///   Event create_event();                       throws when it cannot
///   void destroy_event(Event event) noexcept;
///   void copy_to_device(void* device, const void* pinned, std::size_t bytes, Stream stream);
///   void copy_to_host(void* pinned, const void* device, std::size_t bytes, Stream stream);
///   void record(Event event, Stream stream);    marks the work queued on `stream` so far
///   void wait(Event event);                     the host waits for that work; throws on its error
///   bool synchronize(Stream stream) noexcept;   the host waits for all of `stream`'s work; false
///                                               when the runtime failed
/// Its members are called from several threads at once, each copy on its own ring.
template <class Ops>
class StagingPool {
 public:
  using Stream = typename Ops::Stream;
  using Event = typename Ops::Event;

  StagingPool(Ops ops, StagingLimits limits) : ops_(ops), limits_(limits) {
    idle_.reserve(static_cast<std::size_t>(std::max(limits_.max_rings, 1)));  // give_back never allocates
  }
  /// Frees the idle rings; no copy may be running.
  ~StagingPool() { release_idle(); }
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  /// Copies `bytes` from pageable `host` to `device`, on `stream` after the work queued there;
  /// returns when they are on the device. Throws what Ops throws, after waiting for `stream`.
  void to_device(void* device, const void* host, std::size_t bytes, Stream stream) {
    if (bytes == 0) return;
    Lease lease(*this, staging_slot_bytes(bytes, limits_));
    Ring& ring = lease.ring();
    auto* to = static_cast<unsigned char*>(device);
    const auto* from = static_cast<const unsigned char*>(host);
    lease.guard(stream, [&] {
      std::size_t k = 0;
      for (std::size_t offset = 0; offset < bytes; offset += ring.capacity, ++k) {
        const std::size_t s = k % 2;
        const std::size_t n = std::min(ring.capacity, bytes - offset);
        lease.settle(s);  // chunk k - 2 has left slot s
        std::memcpy(ring.slot[s], from + offset, n);
        lease.queue(s);
        ops_.copy_to_device(to + offset, ring.slot[s], n, stream);
        ops_.record(ring.event[s], stream);
      }
      lease.settle(k % 2);  // the older chunk's slot, then the last one's
      lease.settle((k - 1) % 2);
    });
  }

  /// Copies `bytes` from `device` to pageable `host`, on `stream` after the work queued there;
  /// returns when they are in `host`. Throws what Ops throws, after waiting for `stream`.
  void to_host(void* host, const void* device, std::size_t bytes, Stream stream) {
    if (bytes == 0) return;
    Lease lease(*this, staging_slot_bytes(bytes, limits_));
    Ring& ring = lease.ring();
    auto* to = static_cast<unsigned char*>(host);
    const auto* from = static_cast<const unsigned char*>(device);
    lease.guard(stream, [&] {
      // Chunk k's copy to the host is queued before chunk k - 1 is waited for and copied out.
      const auto copy_out = [&](std::size_t k) {
        const std::size_t offset = k * ring.capacity;
        lease.settle(k % 2);
        std::memcpy(to + offset, ring.slot[k % 2], std::min(ring.capacity, bytes - offset));
      };
      std::size_t k = 0;
      for (std::size_t offset = 0; offset < bytes; offset += ring.capacity, ++k) {
        const std::size_t s = k % 2;
        lease.queue(s);  // slot s was copied out at the previous step
        ops_.copy_to_host(ring.slot[s], from + offset, std::min(ring.capacity, bytes - offset), stream);
        ops_.record(ring.event[s], stream);
        if (k > 0) copy_out(k - 1);
      }
      copy_out(k - 1);
    });
  }

  /// Rings that exist now, lent or idle.
  int rings() const {
    const std::lock_guard lock(mutex_);
    return rings_;
  }
  /// Rings lent now.
  int lent() const {
    const std::lock_guard lock(mutex_);
    return rings_ - static_cast<int>(idle_.size());
  }
  const StagingLimits& limits() const noexcept { return limits_; }

  /// Frees the rings no copy holds (a backend's destructor calls it on the rings' device, when no
  /// copier is left to wait for the lock).
  void release_idle() noexcept {
    const std::lock_guard lock(mutex_);
    for (const std::unique_ptr<Ring>& ring : idle_) destroy(*ring);
    rings_ -= static_cast<int>(idle_.size());
    idle_.clear();  // keeps its capacity: give_back never allocates
  }

 private:
  struct Ring {
    void* slot[2] = {nullptr, nullptr};
    Event event[2] = {Event{}, Event{}};
    bool has_event[2] = {false, false};
    std::size_t capacity = 0;
    std::unique_ptr<Ring> next_retired;  // the retired list's link: retiring never allocates
  };

  // One copy's hold on a ring: taken from the pool, given back when the copy ends; a ring whose
  // stream could not be waited for after an error is never reused nor freed (a copy may still
  // write it), and its place in the bound goes to a new one.
  class Lease {
   public:
    Lease(StagingPool& pool, std::size_t slot_bytes) : pool_(pool), ring_(pool.take(slot_bytes)) {}
    ~Lease() { pool_.give_back(std::move(ring_), retired_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    Ring& ring() { return *ring_; }
    // Slot s's copy is queued and not yet waited for.
    void queue(std::size_t s) { pending_[s] = true; }
    // Waits for slot s's last copy, if it has one not yet waited for.
    void settle(std::size_t s) {
      if (!pending_[s]) return;
      pool_.ops_.wait(ring_->event[s]);
      pending_[s] = false;
    }
    // Runs `copy`; when it throws, waits for `stream` (nothing queued stays in flight) first.
    template <class Copy>
    void guard(Stream stream, Copy&& copy) {
      try {
        copy();
      } catch (...) {
        if (pending_[0] || pending_[1]) retired_ = !pool_.ops_.synchronize(stream);
        pending_[0] = pending_[1] = false;
        throw;
      }
    }

   private:
    StagingPool& pool_;
    std::unique_ptr<Ring> ring_;
    bool pending_[2] = {false, false};
    bool retired_ = false;
  };

  // A ring with chunks of at least `slot_bytes`: an idle one that has them, else an idle one grown,
  // else a new one while fewer than max_rings exist; else waits for one to come back.
  std::unique_ptr<Ring> take(std::size_t slot_bytes) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!idle_.empty()) {
        // The smallest idle ring that is large enough, else the largest (to be grown).
        const auto better = [slot_bytes](const std::unique_ptr<Ring>& a, const std::unique_ptr<Ring>& b) {
          const bool a_fits = a->capacity >= slot_bytes, b_fits = b->capacity >= slot_bytes;
          if (a_fits != b_fits) return a_fits;
          return a_fits ? a->capacity < b->capacity : a->capacity > b->capacity;
        };
        const auto best = std::min_element(idle_.begin(), idle_.end(), better);
        std::unique_ptr<Ring> ring = std::move(*best);
        idle_.erase(best);
        lock.unlock();
        if (ring->capacity < slot_bytes) {
          try {
            grow(*ring, slot_bytes);
          } catch (...) {
            give_back(std::move(ring), false);  // intact: grow changes nothing when it fails
            throw;
          }
        }
        return ring;
      }
      if (rings_ < std::max(limits_.max_rings, 1)) {
        ++rings_;
        lock.unlock();
        return create(slot_bytes);
      }
      returned_.wait(lock);
    }
  }

  // Outside the lock: allocating pinned memory takes long.
  std::unique_ptr<Ring> create(std::size_t slot_bytes) {
    auto ring = std::make_unique<Ring>();
    try {
      for (std::size_t s = 0; s < 2; ++s) {
        ring->event[s] = ops_.create_event();
        ring->has_event[s] = true;
      }
      grow(*ring, slot_bytes);
    } catch (...) {
      destroy(*ring);
      forget();
      throw;
    }
    return ring;
  }

  // The new chunks first, so a failure leaves the ring as it was.
  void grow(Ring& ring, std::size_t slot_bytes) {
    void* grown[2] = {nullptr, nullptr};
    try {
      grown[0] = ops_.allocate_host(slot_bytes);
      grown[1] = ops_.allocate_host(slot_bytes);
    } catch (...) {
      if (grown[0] != nullptr) ops_.free_host(grown[0]);
      throw;
    }
    for (std::size_t s = 0; s < 2; ++s) {
      if (ring.slot[s] != nullptr) ops_.free_host(ring.slot[s]);
      ring.slot[s] = grown[s];
    }
    ring.capacity = slot_bytes;
  }

  void destroy(Ring& ring) noexcept {
    for (std::size_t s = 0; s < 2; ++s) {
      if (ring.slot[s] != nullptr) ops_.free_host(ring.slot[s]);
      if (ring.has_event[s]) ops_.destroy_event(ring.event[s]);
      ring.slot[s] = nullptr;
      ring.has_event[s] = false;
    }
  }

  // A ring that will not come back: its place in the bound is free.
  void forget() noexcept {
    {
      const std::lock_guard lock(mutex_);
      --rings_;
    }
    returned_.notify_one();
  }

  void give_back(std::unique_ptr<Ring> ring, bool retired) noexcept {
    if (retired) {
      {
        // Kept, its chunks and events never released: see Lease.
        const std::lock_guard lock(mutex_);
        ring->next_retired = std::move(retired_);
        retired_ = std::move(ring);
        --rings_;
      }
      returned_.notify_one();
      return;
    }
    {
      const std::lock_guard lock(mutex_);
      idle_.push_back(std::move(ring));
    }
    returned_.notify_one();
  }

  Ops ops_;
  const StagingLimits limits_;
  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Ring>> idle_;
  int rings_ = 0;  // lent and idle
  std::unique_ptr<Ring> retired_;
};

}  // namespace embedkit::kernels
