#pragma once
/// @file buffer.hpp
/// @brief The owning memory of the arrays the C++ API returns, and the cache that recycles it.
///
/// Large buffers (1 MiB and up) come from a bounded cache of recently freed blocks, so a training
/// loop that gets a fresh lookup output every step reuses memory that is already mapped instead of
/// faulting a new block in page by page. A Buffer can hand its memory on (release()) with the
/// deleter that returns it to the cache, e.g. to a framework through DLPack.

#include <embedkit/export.h>

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace embedkit {

namespace detail {
/// Memory for `count` elements of `element_bytes` from the output allocator, aligned to 64 bytes;
/// NULL for none. @throws Error(Status::out_of_memory) when the system has none or the size overflows.
EMBEDKIT_API void* allocate_output(std::size_t count, std::size_t element_bytes);
/// Returns memory from allocate_output (`bytes`: count x element_bytes); NULL is a no-op.
EMBEDKIT_API void free_output(void* data, std::size_t bytes) noexcept;
}  // namespace detail

/// @brief Bytes of freed large blocks kept for reuse (default 1 GiB, or the environment variable
/// EMBEDKIT_OUTPUT_CACHE_BYTES, read when the cache is first used); 0 disables the cache and frees
/// what it holds.
EMBEDKIT_API void set_output_cache_capacity(std::size_t bytes);
/// @brief The cache's current capacity in bytes.
EMBEDKIT_API std::size_t output_cache_capacity();

/// @brief Frees memory a Buffer handed on through release(): it goes back to the output cache.
struct OutputDeleter {
  std::size_t bytes = 0;
  void operator()(void* data) const noexcept { detail::free_output(data, bytes); }
};

/// @brief An owning, contiguous array of trivially copyable elements with std::vector's read
/// interface, allocated by embedkit's output allocator.
template <class T>
class Buffer {
  static_assert(std::is_trivially_copyable_v<T>, "Buffer holds trivially copyable elements");

 public:
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  Buffer() noexcept = default;
  /// `count` value-initialised (zero) elements, as std::vector(count).
  explicit Buffer(std::size_t count) : Buffer(uninitialized(count)) { std::fill_n(data_, count, T{}); }
  /// A copy of `values`.
  explicit Buffer(std::span<const T> values) : Buffer(uninitialized(values.size())) {
    std::copy(values.begin(), values.end(), data_);
  }
  Buffer(const std::vector<T>& values) : Buffer(std::span<const T>(values)) {}  // NOLINT: a vector converts
  Buffer(std::initializer_list<T> values) : Buffer(std::span<const T>(values.begin(), values.size())) {}
  /// `count` elements left uninitialised, for an output the caller writes whole.
  static Buffer uninitialized(std::size_t count) {
    Buffer buffer;
    buffer.data_ = static_cast<T*>(detail::allocate_output(count, sizeof(T)));
    buffer.size_ = count;
    return buffer;
  }

  Buffer(const Buffer& other) : Buffer(std::span<const T>(other.data_, other.size_)) {}
  Buffer(Buffer&& other) noexcept : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Buffer& operator=(const Buffer& other) {
    if (this != &other) *this = Buffer(other);
    return *this;
  }
  Buffer& operator=(Buffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~Buffer() { detail::free_output(data_, size_ * sizeof(T)); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  T& front() noexcept { return data_[0]; }
  const T& front() const noexcept { return data_[0]; }
  T& back() noexcept { return data_[size_ - 1]; }
  const T& back() const noexcept { return data_[size_ - 1]; }

  /// A std::vector copy of the elements; implicit, so code written when Array::values was a
  /// std::vector keeps compiling (at the cost of the copy it always made).
  operator std::vector<T>() const { return std::vector<T>(begin(), end()); }  // NOLINT: see above
  /// Hands the memory on, leaving this Buffer empty: the returned pointer's deleter returns it to
  /// the output cache (call it, or let the unique_ptr do so, exactly once).
  std::unique_ptr<T[], OutputDeleter> release() noexcept {
    const OutputDeleter deleter{size_ * sizeof(T)};
    size_ = 0;
    return std::unique_ptr<T[], OutputDeleter>(std::exchange(data_, nullptr), deleter);
  }

  friend bool operator==(const Buffer& a, const Buffer& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }
  friend bool operator==(const Buffer& a, const std::vector<T>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace embedkit
