#pragma once
// A backend's memory, apart from what runs on it: allocation, copies across to and from the host,
// ownership checks and streams. Backend (backend.hpp) adds the table operations; staging a call's
// inputs and outputs (Staging, the C ABI's TensorStaging) needs only this.

#include <embedkit/placement.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace embedkit::detail {

class BackendMemory;

/// Free and total bytes of a backend's memory.
struct MemoryInfo {
  std::uint64_t free_bytes = 0;
  std::uint64_t total_bytes = 0;
};

/// Memory allocated by a backend and returned to it on destruction. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(BackendMemory* owner, void* data, std::size_t bytes) : owner_(owner), data_(data), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    DeviceBuffer(std::move(other)).swap(*this);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  template <class T>
  T* as() const noexcept {
    return static_cast<T*>(data_);
  }
  std::size_t bytes() const noexcept { return bytes_; }
  void swap(DeviceBuffer& other) noexcept {
    std::swap(owner_, other.owner_);
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
  }

 private:
  BackendMemory* owner_ = nullptr;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Where a backend's memory lives and how bytes cross to it.
class BackendMemory {
 public:
  virtual ~BackendMemory() = default;

  /// "cpu", "cuda:0", "sim:0".
  virtual std::string name() const = 0;
  virtual DeviceKind kind() const = 0;
  virtual MemoryInfo memory_info() const = 0;
  /// Whether host code may read and write this memory directly (only the CPU's).
  virtual bool host_accessible() const = 0;
  /// Allocates `bytes` (named `what` in errors). Throws Error(out_of_memory) when it cannot.
  virtual DeviceBuffer allocate(std::size_t bytes, std::string_view what) = 0;
  /// Returns memory from allocate(); called by DeviceBuffer.
  virtual void deallocate(void* data, std::size_t bytes) noexcept = 0;
  virtual void copy_from_host(void* destination, const void* host, std::size_t bytes) = 0;
  virtual void copy_to_host(void* host, const void* source, std::size_t bytes) = 0;
  /// Whether [data, data + bytes) lies in memory this backend allocated.
  virtual bool owns(const void* data, std::size_t bytes) const = 0;
  /// Makes this thread's copies and allocations on this backend go on `stream` (a cudaStream_t
  /// on CUDA; NULL: the backend's own stream) and returns the stream bound before. A backend
  /// without streams ignores it.
  virtual void* bind_stream(void* stream) {
    (void)stream;
    return nullptr;
  }
};

/// Binds a stream to this thread's copies on `backend` for the scope's length.
class BoundStream {
 public:
  BoundStream(BackendMemory& backend, void* stream) : backend_(backend), previous_(backend.bind_stream(stream)) {}
  ~BoundStream() { backend_.bind_stream(previous_); }
  BoundStream(const BoundStream&) = delete;
  BoundStream& operator=(const BoundStream&) = delete;

 private:
  BackendMemory& backend_;
  void* previous_;
};

inline DeviceBuffer::~DeviceBuffer() {
  if (owner_ != nullptr && data_ != nullptr) owner_->deallocate(data_, bytes_);
}

}  // namespace embedkit::detail
