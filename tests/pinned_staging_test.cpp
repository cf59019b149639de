// The CUDA backend's pinned staging (kernels/pinned_staging.hpp), checked without a GPU over a fake
// device that queues every copy and performs it only when an event recorded after it is waited for
// or its stream synchronised: a slot refilled before its copy was waited for, or read before its
// copy was, shows as wrong bytes, besides the fake's own checks of what is in flight.
#include <gtest/gtest.h>

#include "kernels/pinned_staging.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using embedkit::kernels::StagingLimits;

struct FakeDevice {
  struct Op {
    int stream;
    unsigned char* to;
    const unsigned char* from;
    std::size_t bytes;
    const void* slot;
  };
  struct Recorded {
    int stream = 0;
    std::size_t ops = 0;  // the stream's ops queued when it was recorded
  };

  std::mutex mutex;
  std::vector<Op> queued;                   // in queue order, every stream
  std::map<int, std::size_t> queued_total;  // per stream, ever
  std::map<int, std::size_t> done_total;    // per stream, performed
  std::map<int, Recorded> events;
  std::map<const void*, std::unique_ptr<unsigned char[]>> pinned;
  std::map<const void*, std::string> names;  // p0, p1, ... in allocation order
  int allocations = 0, created_events = 0, live_events = 0;
  std::size_t max_in_flight = 0;  // per stream
  std::vector<std::string> violations;
  std::vector<std::string> log;
  const unsigned char* device_base = nullptr;  // for the log's offsets
  // Failure injection: the `fail_at`-th call (from 1) of `fail_call` ("copy", "record", "wait",
  // "allocate") throws; synchronize answers false when `fail_synchronize`.
  std::string fail_call;
  int fail_at = 0;
  std::map<std::string, int> calls;
  bool fail_synchronize = false;
  // Called at each wait, outside the fake's lock (a rendezvous, a gate, a look at the pool).
  std::function<void()> on_wait;

  void maybe_fail(const std::string& call) {
    if (call == fail_call && ++calls[call] == fail_at) {
      log.push_back("fail " + call);
      throw std::runtime_error("injected " + call + " failure");
    }
  }
  std::string offset(const void* p) const {
    return "+" + std::to_string(static_cast<const unsigned char*>(p) - device_base);
  }
  // Performs the first `count` queued ops of `stream`.
  void perform(int stream, std::size_t count) {
    std::size_t done = 0;
    for (auto it = queued.begin(); it != queued.end() && done < count;) {
      if (it->stream != stream) {
        ++it;
        continue;
      }
      std::memcpy(it->to, it->from, it->bytes);
      ++done;
      ++done_total[stream];
      it = queued.erase(it);
    }
  }
  void enqueue(const Op& op) {
    for (const Op& other : queued) {
      if (other.slot == op.slot) violations.push_back("slot " + names[op.slot] + " queued again while in flight");
    }
    queued.push_back(op);
    ++queued_total[op.stream];
    std::size_t in_flight = 0;
    for (const Op& other : queued) in_flight += other.stream == op.stream ? 1 : 0;
    max_in_flight = std::max(max_in_flight, in_flight);
  }
  std::size_t in_flight(int stream) {
    const std::lock_guard lock(mutex);
    std::size_t n = 0;
    for (const Op& op : queued) n += op.stream == stream ? 1 : 0;
    return n;
  }
};

struct FakeOps {
  using Stream = int;
  using Event = int;
  FakeDevice* device;

  void* allocate_host(std::size_t bytes) const {
    const std::lock_guard lock(device->mutex);
    device->maybe_fail("allocate");
    auto data = std::make_unique<unsigned char[]>(bytes);
    std::memset(data.get(), 0xcd, bytes);  // what a fresh page-locked buffer may hold
    void* p = data.get();
    device->names[p] = "p" + std::to_string(device->allocations++);
    device->log.push_back("allocate " + device->names[p] + " " + std::to_string(bytes));
    device->pinned[p] = std::move(data);
    return p;
  }
  void free_host(void* data) const noexcept {
    const std::lock_guard lock(device->mutex);
    device->log.push_back("free " + device->names[data]);
    for (const FakeDevice::Op& op : device->queued) {
      if (op.slot == data) device->violations.push_back("freed " + device->names[data] + " while in flight");
    }
    device->pinned.erase(data);
  }
  int create_event() const {
    const std::lock_guard lock(device->mutex);
    ++device->live_events;
    return device->created_events++;
  }
  void destroy_event(int) const noexcept {
    const std::lock_guard lock(device->mutex);
    --device->live_events;
  }
  void copy_to_device(void* to, const void* pinned, std::size_t bytes, int stream) const {
    const std::lock_guard lock(device->mutex);
    device->maybe_fail("copy");
    device->log.push_back("h2d " + device->names[pinned] + " " + device->offset(to) + " " + std::to_string(bytes));
    device->enqueue(
        {stream, static_cast<unsigned char*>(to), static_cast<const unsigned char*>(pinned), bytes, pinned});
  }
  void copy_to_host(void* pinned, const void* from, std::size_t bytes, int stream) const {
    const std::lock_guard lock(device->mutex);
    device->maybe_fail("copy");
    device->log.push_back("d2h " + device->offset(from) + " " + device->names[pinned] + " " + std::to_string(bytes));
    device->enqueue(
        {stream, static_cast<unsigned char*>(pinned), static_cast<const unsigned char*>(from), bytes, pinned});
  }
  void record(int event, int stream) const {
    const std::lock_guard lock(device->mutex);
    device->maybe_fail("record");
    device->log.push_back("record e" + std::to_string(event));
    device->events[event] = {stream, device->queued_total[stream]};
  }
  void wait(int event) const {
    if (device->on_wait) device->on_wait();
    const std::lock_guard lock(device->mutex);
    device->maybe_fail("wait");
    device->log.push_back("wait e" + std::to_string(event));
    const FakeDevice::Recorded recorded = device->events.at(event);
    const std::size_t done = device->done_total[recorded.stream];
    if (recorded.ops > done) device->perform(recorded.stream, recorded.ops - done);
  }
  bool synchronize(int stream) const noexcept {
    const std::lock_guard lock(device->mutex);
    device->log.push_back("synchronize");
    if (device->fail_synchronize) return false;
    device->perform(stream, SIZE_MAX);
    return true;
  }
};

using Pool = embedkit::kernels::StagingPool<FakeOps>;

constexpr std::size_t kChunk = 64;
// Chunks of exactly kChunk, whatever the copy's size.
constexpr StagingLimits kFixed{.chunk_bytes = kChunk, .max_rings = 4, .min_slot_bytes = kChunk};
constexpr std::size_t kGuard = 16;  // bytes past the end that no copy may touch

std::vector<unsigned char> pattern(std::size_t bytes, unsigned seed) {
  std::vector<unsigned char> data(bytes + kGuard, 0xee);
  for (std::size_t i = 0; i < bytes; ++i) data[i] = static_cast<unsigned char>(i * 131 + seed * 17 + 7);
  return data;
}

// Every byte at its offset, and the guard bytes past the end untouched.
void expect_copied(const std::vector<unsigned char>& expected, const std::vector<unsigned char>& got,
                   std::size_t bytes) {
  ASSERT_EQ(expected.size(), got.size());
  for (std::size_t i = 0; i < bytes; ++i) ASSERT_EQ(got[i], expected[i]) << "byte " << i << " of " << bytes;
  for (std::size_t i = bytes; i < got.size(); ++i) ASSERT_EQ(got[i], 0xee) << "guard byte " << i - bytes;
}

const std::size_t kSizes[] = {0, 1, kChunk - 1, kChunk, kChunk + 1, 5 * kChunk + 3};

TEST(PinnedStaging, EveryByteLandsAtItsOffsetToTheDevice) {
  FakeDevice device;
  Pool pool(FakeOps{&device}, kFixed);
  for (const std::size_t bytes : kSizes) {
    const std::vector<unsigned char> host = pattern(bytes, 1);
    std::vector<unsigned char> on_device(bytes + kGuard, 0xee);
    device.max_in_flight = 0;
    pool.to_device(on_device.data(), host.data(), bytes, 1);
    expect_copied(host, on_device, bytes);
    EXPECT_EQ(device.in_flight(1), 0u) << bytes;
    const std::size_t chunks = (bytes + kChunk - 1) / kChunk;
    EXPECT_EQ(device.max_in_flight, std::min<std::size_t>(chunks, 2)) << bytes;  // pipelined, and bounded
  }
  EXPECT_EQ(device.violations, std::vector<std::string>{});
  EXPECT_EQ(pool.rings(), 1);  // one copier at a time: one ring, reused
}

TEST(PinnedStaging, EveryByteLandsAtItsOffsetToTheHost) {
  FakeDevice device;
  Pool pool(FakeOps{&device}, kFixed);
  for (const std::size_t bytes : kSizes) {
    const std::vector<unsigned char> on_device = pattern(bytes, 2);
    std::vector<unsigned char> host(bytes + kGuard, 0xee);
    device.max_in_flight = 0;
    pool.to_host(host.data(), on_device.data(), bytes, 1);
    expect_copied(on_device, host, bytes);
    EXPECT_EQ(device.in_flight(1), 0u) << bytes;
    const std::size_t chunks = (bytes + kChunk - 1) / kChunk;
    EXPECT_EQ(device.max_in_flight, std::min<std::size_t>(chunks, 2)) << bytes;
  }
  EXPECT_EQ(device.violations, std::vector<std::string>{});
  EXPECT_EQ(pool.rings(), 1);
}

// The pipeline's order, step by step: a slot is refilled only after its last copy's event was
// waited for, and the next chunk's copy is queued before the previous one is waited for.
TEST(PinnedStaging, ToTheDeviceFillsOneSlotWhileTheOtherTravels) {
  FakeDevice device;
  Pool pool(FakeOps{&device}, kFixed);
  const std::vector<unsigned char> host = pattern(2 * kChunk + 5, 3);
  std::vector<unsigned char> on_device(host.size(), 0xee);
  device.device_base = on_device.data();
  pool.to_device(on_device.data(), host.data(), 2 * kChunk + 5, 1);
  EXPECT_EQ(device.log, (std::vector<std::string>{"allocate p0 64", "allocate p1 64",  //
                                                  "h2d p0 +0 64", "record e0",         //
                                                  "h2d p1 +64 64", "record e1",        //
                                                  "wait e0", "h2d p0 +128 5", "record e0", "wait e1", "wait e0"}));
  expect_copied(host, on_device, 2 * kChunk + 5);
}

TEST(PinnedStaging, ToTheHostCopiesOneSlotOutWhileTheOtherTravels) {
  FakeDevice device;
  Pool pool(FakeOps{&device}, kFixed);
  const std::vector<unsigned char> on_device = pattern(2 * kChunk + 5, 4);
  std::vector<unsigned char> host(on_device.size(), 0xee);
  device.device_base = on_device.data();
  pool.to_host(host.data(), on_device.data(), 2 * kChunk + 5, 1);
  EXPECT_EQ(device.log, (std::vector<std::string>{"allocate p0 64", "allocate p1 64",       //
                                                  "d2h +0 p0 64", "record e0",              //
                                                  "d2h +64 p1 64", "record e1", "wait e0",  //
                                                  "d2h +128 p0 5", "record e0", "wait e1", "wait e0"}));
  expect_copied(on_device, host, 2 * kChunk + 5);
}

// An error in the middle queues nothing more and waits for the stream before the call throws:
// nothing of the copy is left in flight, and the ring serves the next copy.
TEST(PinnedStaging, AnErrorInTheMiddleStopsAndLeavesNothingInFlight) {
  for (const char* call : {"copy", "record", "wait"}) {
    for (const bool to_device : {true, false}) {
      SCOPED_TRACE(std::string(call) + (to_device ? " to the device" : " to the host"));
      FakeDevice device;
      Pool pool(FakeOps{&device}, kFixed);
      device.fail_call = call;
      device.fail_at = 2;
      const std::size_t bytes = 5 * kChunk + 3;
      const std::vector<unsigned char> source = pattern(bytes, 5);
      std::vector<unsigned char> target(source.size(), 0xee);
      EXPECT_THROW(to_device ? pool.to_device(target.data(), source.data(), bytes, 1)
                             : pool.to_host(target.data(), source.data(), bytes, 1),
                   std::runtime_error);
      EXPECT_EQ(device.in_flight(1), 0u);
      ASSERT_GE(device.log.size(), 2u);
      EXPECT_EQ(device.log[device.log.size() - 2], "fail " + std::string(call));
      EXPECT_EQ(device.log.back(), "synchronize");  // and nothing queued after the failure
      EXPECT_EQ(pool.rings(), 1);
      EXPECT_EQ(pool.lent(), 0);
      // The same ring copies the next call, in full.
      device.fail_call.clear();
      std::vector<unsigned char> again(source.size(), 0xee);
      to_device ? pool.to_device(again.data(), source.data(), bytes, 1)
                : pool.to_host(again.data(), source.data(), bytes, 1);
      expect_copied(source, again, bytes);
      EXPECT_EQ(device.allocations, 2);
      EXPECT_EQ(device.violations, std::vector<std::string>{});
    }
  }
}

// A stream that cannot be waited for after an error may still write the ring: it is never reused
// nor freed, and a new ring takes its place in the bound.
TEST(PinnedStaging, ARingWhoseStreamCannotBeWaitedForIsRetired) {
  FakeDevice device;
  Pool pool(FakeOps{&device}, StagingLimits{.chunk_bytes = kChunk, .max_rings = 1, .min_slot_bytes = kChunk});
  device.fail_call = "wait";
  device.fail_at = 1;
  device.fail_synchronize = true;
  const std::vector<unsigned char> source = pattern(3 * kChunk, 6);
  std::vector<unsigned char> target(source.size(), 0xee);
  EXPECT_THROW(pool.to_host(target.data(), source.data(), 3 * kChunk, 1), std::runtime_error);
  EXPECT_EQ(pool.rings(), 0);
  device.fail_call.clear();
  device.fail_synchronize = false;
  std::vector<unsigned char> again(source.size(), 0xee);
  pool.to_host(again.data(), source.data(), 3 * kChunk, 2);  // another stream: the first is broken
  expect_copied(source, again, 3 * kChunk);
  EXPECT_EQ(pool.rings(), 1);
  EXPECT_EQ(device.allocations, 4);
  EXPECT_EQ(device.log.end()[-1], "wait e2");
  for (const std::string& entry : device.log) EXPECT_NE(entry, "free p0");
}

TEST(PinnedStaging, SmallCopiesTakeSmallChunksAndARingGrowsUpToTheChunk) {
  FakeDevice device;
  Pool pool(FakeOps{&device}, StagingLimits{.chunk_bytes = 1024, .max_rings = 4, .min_slot_bytes = 64});
  std::vector<unsigned char> target(5000 + kGuard, 0xee);
  const std::vector<unsigned char> source = pattern(5000, 7);
  pool.to_device(target.data(), source.data(), 10, 1);
  pool.to_device(target.data(), source.data(), 60, 1);    // fits
  pool.to_device(target.data(), source.data(), 100, 1);   // grows to 128: new chunks, then the old freed
  pool.to_device(target.data(), source.data(), 5000, 1);  // 1024-byte chunks
  expect_copied(source, target, 5000);
  std::vector<std::string> memory;
  for (const std::string& entry : device.log) {
    if (entry.rfind("allocate", 0) == 0 || entry.rfind("free", 0) == 0) memory.push_back(entry);
  }
  EXPECT_EQ(memory, (std::vector<std::string>{"allocate p0 64", "allocate p1 64", "allocate p2 128", "allocate p3 128",
                                              "free p0", "free p1", "allocate p4 1024", "allocate p5 1024", "free p2",
                                              "free p3"}));
  EXPECT_EQ(pool.rings(), 1);
}

TEST(PinnedStaging, AFailedAllocationLeavesThePoolAsItWas) {
  FakeDevice device;
  {
    Pool pool(FakeOps{&device}, StagingLimits{.chunk_bytes = 1024, .max_rings = 1, .min_slot_bytes = 64});
    std::vector<unsigned char> target(2048 + kGuard, 0xee);
    const std::vector<unsigned char> source = pattern(2048, 8);
    device.fail_call = "allocate";
    device.fail_at = 2;  // a new ring's second chunk
    EXPECT_THROW(pool.to_device(target.data(), source.data(), 10, 1), std::runtime_error);
    EXPECT_EQ(pool.rings(), 0);
    EXPECT_EQ(device.pinned.size(), 0u);
    EXPECT_EQ(device.live_events, 0);
    device.fail_call.clear();
    pool.to_device(target.data(), source.data(), 10, 1);
    device.fail_call = "allocate";
    device.calls.clear();
    device.fail_at = 1;  // growing the ring
    EXPECT_THROW(pool.to_device(target.data(), source.data(), 2048, 1), std::runtime_error);
    EXPECT_EQ(pool.rings(), 1);  // back, with its small chunks
    EXPECT_EQ(pool.lent(), 0);
    device.fail_call.clear();
    pool.to_device(target.data(), source.data(), 2048, 1);  // one ring at most: this is the same one
    expect_copied(source, target, 2048);
  }
  EXPECT_EQ(device.pinned.size(), 0u);  // the pool frees its rings
  EXPECT_EQ(device.live_events, 0);
}

// Copiers do not wait for each other's copies: each holds its own ring, and all of them are in
// the middle of a copy (waiting for an event) at once; the pool's lock is not held there.
TEST(PinnedStaging, ConcurrentCopiersEachHaveARingAndOverlap) {
  FakeDevice device;
  const int copiers = 4;
  Pool pool(FakeOps{&device}, StagingLimits{.chunk_bytes = kChunk, .max_rings = copiers, .min_slot_bytes = kChunk});
  std::mutex mutex;
  std::condition_variable all_in;
  int waiting = 0;
  bool met = false, timed_out = false;
  device.on_wait = [&] {
    std::unique_lock lock(mutex);
    if (met) return;
    if (++waiting == copiers) {
      met = true;
      all_in.notify_all();
      return;
    }
    if (!all_in.wait_for(lock, std::chrono::seconds(10), [&] { return met; })) timed_out = true;
  };
  const std::size_t bytes = 5 * kChunk + 3;
  std::vector<std::vector<unsigned char>> sources, targets;
  for (int t = 0; t < copiers; ++t) {
    sources.push_back(pattern(bytes, 10 + t));
    targets.emplace_back(bytes + kGuard, 0xee);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < copiers; ++t) {
    threads.emplace_back([&, t] {
      if (t % 2 == 0) {
        pool.to_device(targets[t].data(), sources[t].data(), bytes, t + 1);
      } else {
        pool.to_host(targets[t].data(), sources[t].data(), bytes, t + 1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE(met);
  EXPECT_FALSE(timed_out);
  for (int t = 0; t < copiers; ++t) expect_copied(sources[t], targets[t], bytes);
  EXPECT_EQ(pool.rings(), copiers);
  EXPECT_EQ(device.violations, std::vector<std::string>{});  // no slot shared by two copies in flight
}

// With every ring lent, a further copier waits for one to come back, then copies through it.
TEST(PinnedStaging, BeyondTheBoundACopierWaitsForARing) {
  FakeDevice device;
  Pool pool(FakeOps{&device}, StagingLimits{.chunk_bytes = kChunk, .max_rings = 2, .min_slot_bytes = kChunk});
  std::mutex mutex;
  std::condition_variable changed;
  int waiting = 0;
  bool open = false;
  device.on_wait = [&] {
    std::unique_lock lock(mutex);
    ++waiting;
    changed.notify_all();
    changed.wait_for(lock, std::chrono::seconds(10), [&] { return open; });
  };
  const std::size_t bytes = 3 * kChunk;
  std::vector<std::vector<unsigned char>> sources, targets;
  for (int t = 0; t < 3; ++t) {
    sources.push_back(pattern(bytes, 20 + t));
    targets.emplace_back(bytes + kGuard, 0xee);
  }
  const auto copy = [&](int t) { pool.to_host(targets[t].data(), sources[t].data(), bytes, t + 1); };
  std::thread first(copy, 0), second(copy, 1);
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return waiting == 2; }));
  }
  std::thread third(copy, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(pool.lent(), 2);
  EXPECT_EQ(device.in_flight(3), 0u);  // the third has queued nothing: it has no ring
  {
    const std::lock_guard lock(mutex);
    open = true;
  }
  changed.notify_all();
  first.join();
  second.join();
  third.join();
  for (int t = 0; t < 3; ++t) expect_copied(sources[t], targets[t], bytes);
  EXPECT_EQ(pool.rings(), 2);
  EXPECT_EQ(device.allocations, 4);
  EXPECT_EQ(device.violations, std::vector<std::string>{});
}

// Many copiers, many copies, a bound below the copiers: every byte right, never more rings.
TEST(PinnedStaging, ManyCopiersNeverExceedTheBound) {
  FakeDevice device;
  const int bound = 3, copiers = 8;
  Pool pool(FakeOps{&device}, StagingLimits{.chunk_bytes = kChunk, .max_rings = bound, .min_slot_bytes = kChunk});
  std::mutex mutex;
  int most_lent = 0;
  device.on_wait = [&] {
    const int lent = pool.lent();  // the pool's lock is free here, or this would not return
    const std::lock_guard lock(mutex);
    most_lent = std::max(most_lent, lent);
  };
  std::vector<std::thread> threads;
  std::vector<int> failures(copiers, 0);
  for (int t = 0; t < copiers; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        const std::size_t bytes = kSizes[(t + round) % std::size(kSizes)];
        const std::vector<unsigned char> source = pattern(bytes, t * 100 + round);
        std::vector<unsigned char> target(bytes + kGuard, 0xee);
        const int stream = t + 1;
        (t + round) % 2 == 0 ? pool.to_device(target.data(), source.data(), bytes, stream)
                             : pool.to_host(target.data(), source.data(), bytes, stream);
        if (target != source) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(copiers, 0));
  EXPECT_LE(most_lent, bound);
  EXPECT_LE(pool.rings(), bound);
  EXPECT_LE(device.allocations, 2 * bound);
  EXPECT_EQ(device.violations, std::vector<std::string>{});
}

TEST(PinnedStaging, TheChunkComesFromTheEnvironmentAsACountOfBytes) {
  using embedkit::kernels::parse_staging_chunk_bytes;
  EXPECT_EQ(parse_staging_chunk_bytes("1048576"), std::size_t{1} << 20);
  EXPECT_EQ(parse_staging_chunk_bytes("1"), 1u);
  for (const char* bad : {"", "0", "-1", "64MiB", "12 ", " 12", "1e6", "99999999999999999999999"}) {
    EXPECT_EQ(parse_staging_chunk_bytes(bad), std::nullopt) << "'" << bad << "'";
  }
  const StagingLimits defaults;
  EXPECT_EQ(defaults.chunk_bytes, std::size_t{64} << 20);
  EXPECT_EQ(defaults.max_rings, 4);
}

TEST(PinnedStaging, ACopyAsksForItsSizeRoundedUpWithinTheLimits) {
  using embedkit::kernels::staging_slot_bytes;
  const std::size_t MiB = std::size_t{1} << 20;
  const StagingLimits limits;
  EXPECT_EQ(staging_slot_bytes(1, limits), MiB);
  EXPECT_EQ(staging_slot_bytes(MiB, limits), MiB);
  EXPECT_EQ(staging_slot_bytes(MiB + 1, limits), 2 * MiB);
  EXPECT_EQ(staging_slot_bytes(40 * MiB, limits), 64 * MiB);
  EXPECT_EQ(staging_slot_bytes(64 * MiB, limits), 64 * MiB);
  EXPECT_EQ(staging_slot_bytes(std::size_t{60} << 30, limits), 64 * MiB);  // a 60 GiB table: chunks of 64 MiB
  const StagingLimits odd{.chunk_bytes = 3 * MiB, .max_rings = 4, .min_slot_bytes = MiB};
  EXPECT_EQ(staging_slot_bytes(2 * MiB + 1, odd), 3 * MiB);
  const StagingLimits tiny{.chunk_bytes = 1000, .max_rings = 4, .min_slot_bytes = MiB};
  EXPECT_EQ(staging_slot_bytes(1, tiny), 1000u);
}

}  // namespace
