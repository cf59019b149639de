#pragma once
// Moves one call's arguments to where its table works, and its outputs back. A call's arguments
// may be host memory or memory of the table's context device (a caller's CUDA tensors): those in
// the table's own memory are used in place, the others cross over, and outputs that crossed are
// written back only by finish(), so a call that fails midway never writes the caller's output.

#include "backend/memory.hpp"
#include "core/call_stream.hpp"

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace embedkit::detail {

/// The memories one call's arguments may be in, and the stream its copies go on.
struct CallMemory {
  BackendMemory& table;   // the table's backend
  BackendMemory* device;  // the table's context device, whose memory a caller may pass (NULL: none)
  void* stream;           // the call's stream (cuda_stream.hpp); NULL: none named

  /// The backend whose memory [data, data + bytes) is, or NULL for host memory. Probes the device
  /// only when there is one, so a CPU-only context never asks.
  BackendMemory* owner(const void* data, std::size_t bytes) const {
    if (data == nullptr || bytes == 0) return nullptr;
    if (!table.host_accessible()) return table.owns(data, bytes) ? &table : nullptr;
    return device != nullptr && device->owns(data, bytes) ? device : nullptr;
  }
  /// The stream for work on a caller's device memory (detail::device_tensor_stream).
  void* device_tensor_stream() const { return detail::device_tensor_stream(stream); }
};

class Staging {
 public:
  /// Stages for a call whose stream is bound for its length (the table layer's CallStream).
  explicit Staging(CallMemory memory) : memory_(memory) {}

  /// `bytes` of the caller's data where the table's backend reads them.
  const void* in(const void* data, std::size_t bytes, std::string_view what) {
    BackendMemory* owner = memory_.owner(data, bytes);
    if (owner == &memory_.table) return data;
    if (memory_.table.host_accessible()) {
      if (owner == nullptr) return data;
      host_copies_.emplace_back(bytes);  // device memory, for a table on the host
      const BoundStream bound(*owner, memory_.device_tensor_stream());
      owner->copy_to_host(host_copies_.back().data(), data, bytes);
      return host_copies_.back().data();
    }
    if (data == nullptr) return data;
    buffers_.push_back(memory_.table.allocate(bytes, what));
    memory_.table.copy_from_host(buffers_.back().as<void>(), data, bytes);
    return buffers_.back().as<void>();
  }

  /// Where the table's backend writes an output of `bytes` that finish() delivers to `data`.
  void* out(void* data, std::size_t bytes, std::string_view what) {
    BackendMemory* owner = memory_.owner(data, bytes);
    if (owner == &memory_.table) return data;
    if (memory_.table.host_accessible()) {
      if (owner == nullptr) return data;
      host_copies_.emplace_back(bytes);
      outputs_.push_back({owner, data, host_copies_.back().data(), bytes});
      return host_copies_.back().data();
    }
    if (data == nullptr) return data;
    buffers_.push_back(memory_.table.allocate(bytes, what));
    outputs_.push_back({nullptr, data, buffers_.back().as<void>(), bytes});
    return buffers_.back().as<void>();
  }

  /// Delivers every output that crossed over.
  void finish() {
    for (const Output& output : outputs_) {
      if (output.device == nullptr) {
        memory_.table.copy_to_host(output.destination, output.source, output.bytes);
      } else {
        const BoundStream bound(*output.device, memory_.device_tensor_stream());
        output.device->copy_from_host(output.destination, output.source, output.bytes);
      }
    }
  }

 private:
  struct Output {
    BackendMemory* device;  // the destination's memory: a device's, or NULL for the host
    void* destination;
    const void* source;
    std::size_t bytes;
  };
  CallMemory memory_;
  std::vector<DeviceBuffer> buffers_;
  std::vector<std::vector<unsigned char>> host_copies_;
  std::vector<Output> outputs_;
};

/// `values` readable on the host: themselves when they are host memory, else a copy into `copy`.
/// For the checks and fallbacks that read a call's arguments on the host.
template <class T>
std::span<const T> on_host(const CallMemory& memory, std::span<const T> values, std::vector<T>& copy) {
  BackendMemory* owner = memory.owner(values.data(), values.size_bytes());
  if (owner == nullptr) return values;
  copy.resize(values.size());
  const BoundStream bound(*owner, memory.device_tensor_stream());
  owner->copy_to_host(copy.data(), values.data(), values.size_bytes());
  return copy;
}

}  // namespace embedkit::detail
