#pragma once
// Scratch memory a table keeps on its backend between calls: grown to the largest request and
// never shrunk, so a training loop of steady batches allocates its intermediates once. Not
// thread-safe; its owner lets one operation use it at a time.

#include "backend/backend.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace embedkit::detail {

class Workspace {
 public:
  /// At least `bytes` of `backend`'s memory, valid until the next reserve(). Larger than the
  /// capacity: the old buffer is freed first (a failed growth leaves none, so a smaller retry can
  /// still fit) and a new one allocated, named `what` in errors. Throws Error(out_of_memory).
  void* reserve(Backend& backend, std::size_t bytes, std::string_view what) {
    if (bytes > buffer_.bytes() || buffer_.as<void>() == nullptr) {
      buffer_ = DeviceBuffer();
      buffer_ = backend.allocate(bytes > 0 ? bytes : 1, what);
      ++growths_;
    }
    return buffer_.as<void>();
  }
  /// Bytes held now.
  std::size_t capacity() const noexcept { return buffer_.bytes(); }
  /// Allocations made so far.
  std::int64_t growths() const noexcept { return growths_; }

 private:
  DeviceBuffer buffer_;
  std::int64_t growths_ = 0;
};

}  // namespace embedkit::detail
