#pragma once
// Step-sized working memory that does not fault in anew every step. A train step sorts and groups
// its ids in buffers the size of the batch (tens of MiB at a few million ids); from plain
// std::vectors, malloc maps and returns them each step and every page faults again
// (docs/performance.md has the measurement). RecycledVector draws them from the output allocator
// instead, whose bounded cache of freed blocks (1 MiB and up) hands the next step the pages this
// one used.

#include <embedkit/buffer.hpp>

#include <cstddef>
#include <vector>

namespace embedkit::detail {

/// An allocator over allocate_output / free_output (embedkit/buffer.hpp); all instances are equal.
template <class T>
struct RecycledAllocator {
  using value_type = T;
  RecycledAllocator() noexcept = default;
  template <class U>
  RecycledAllocator(const RecycledAllocator<U>&) noexcept {}  // NOLINT: rebinding converts implicitly
  /// @throws Error(out_of_memory).
  T* allocate(std::size_t count) { return static_cast<T*>(allocate_output(count, sizeof(T))); }
  void deallocate(T* data, std::size_t count) noexcept { free_output(data, count * sizeof(T)); }
  template <class U>
  bool operator==(const RecycledAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using RecycledVector = std::vector<T, RecycledAllocator<T>>;

}  // namespace embedkit::detail
