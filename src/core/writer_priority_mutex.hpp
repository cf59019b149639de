#pragma once
// The table's reader-writer lock. Readers share it; a writer takes it alone, and a writer that is
// waiting goes before readers that arrive after it. std::shared_mutex alone does not promise that
// (glibc's rwlock prefers readers): lookups from a few serving threads, overlapping one another,
// held a train step off for minutes in the concurrency test. Use it as std::shared_mutex, with
// std::shared_lock for readers and std::unique_lock for writers; it is not recursive.

#include <mutex>
#include <shared_mutex>

namespace embedkit::detail {

class WriterPriorityMutex {
 public:
  void lock() {
    turnstile_.lock();  // closed to new readers while this writer waits and writes
    shared_.lock();
  }
  void unlock() {
    shared_.unlock();
    turnstile_.unlock();
  }
  void lock_shared() {
    const std::lock_guard pass(turnstile_);
    shared_.lock_shared();
  }
  void unlock_shared() { shared_.unlock_shared(); }

 private:
  std::mutex turnstile_;
  std::shared_mutex shared_;
};

}  // namespace embedkit::detail
