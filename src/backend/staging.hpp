#pragma once
// Moves one call's host inputs onto the table's backend and its outputs back. On the CPU it passes
// host pointers through untouched; on a device it allocates, copies in, and copies results out
// only in finish(), so a call that fails midway never writes the caller's output.

#include "backend/memory.hpp"

#include <cstddef>
#include <string_view>
#include <vector>

namespace embedkit::detail {

class Staging {
 public:
  explicit Staging(BackendMemory& backend) : backend_(backend) {}

  /// `bytes` of host data as the backend sees them.
  const void* in(const void* host, std::size_t bytes, std::string_view what) {
    if (backend_.host_accessible() || host == nullptr) return host;
    buffers_.push_back(backend_.allocate(bytes, what));
    backend_.copy_from_host(buffers_.back().as<void>(), host, bytes);
    return buffers_.back().as<void>();
  }

  /// Backend memory for an output of `bytes` that finish() copies to `host`.
  void* out(void* host, std::size_t bytes, std::string_view what) {
    if (backend_.host_accessible() || host == nullptr) return host;
    buffers_.push_back(backend_.allocate(bytes, what));
    outputs_.push_back({host, buffers_.back().as<void>(), bytes});
    return buffers_.back().as<void>();
  }

  /// Copies every output back to its host destination.
  void finish() {
    for (const Output& output : outputs_) backend_.copy_to_host(output.host, output.device, output.bytes);
  }

 private:
  struct Output {
    void* host;
    const void* device;
    std::size_t bytes;
  };
  BackendMemory& backend_;
  std::vector<DeviceBuffer> buffers_;
  std::vector<Output> outputs_;
};

}  // namespace embedkit::detail
