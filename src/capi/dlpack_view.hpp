#pragma once
// Checks a borrowed DLTensor before any entry point touches its memory: pointers, rank, shape,
// strides, alignment, device and element type, each failure with its own status and message.

#include <embedkit/tensor.hpp>

#include "backend/backend.hpp"
#include "core/memory_overlap.hpp"

#include <dlpack/dlpack.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace embedkit::detail {

/// A validated tensor: compact row-major, aligned data (NULL only when empty), in host memory
/// unless DeviceTensors::in_place handed a CUDA tensor on as it is.
struct HostTensor {
  void* data = nullptr;
  std::vector<std::int64_t> shape;
  std::int64_t size = 0;
};

/// Element types an entry point accepts for one tensor.
enum class Accept { index, int64, float32, mask };

/// How a call takes tensors in CUDA memory: staged to the host here, or handed on in place to a
/// table operation that takes device memory itself (backend/staging.hpp).
enum class DeviceTensors { staged, in_place };

/// One call's tensors, checked: host tensors as they are; tensors in CUDA memory (kDLCUDA) must be
/// memory of `device`, the backend that owns that memory (null when there is none, and then such
/// a tensor is Error(unsupported)), and are handed on in place or staged across on `stream` (the
/// call's, so the copies follow the caller's work on it; NULL: CUDA's legacy default stream, as
/// DLPack has it). Staged outputs are written back only by finish(), so a failed call writes
/// nothing.
class TensorStaging {
 public:
  explicit TensorStaging(BackendMemory* device, void* stream = nullptr,
                         DeviceTensors device_tensors = DeviceTensors::staged)
      : device_(device), stream_(stream), device_tensors_(device_tensors) {}
  HostTensor input(const DLTensor* tensor, std::string_view name, Accept accept);
  IndexTensor indices(const DLTensor* tensor, std::string_view name = "indices");
  HostTensor output(DLTensor* tensor, std::string_view name, Accept accept);
  /// Refuses the call when an output tensor overlaps an input tensor or `also_read` (the table's
  /// memory), compared where the caller's tensors are (device memory included): check_outputs_apart.
  void check_outputs_apart(std::vector<NamedBytes> also_read) const;
  /// The caller's input tensors so far, where they are.
  const std::vector<NamedBytes>& inputs_read() const { return read_; }
  void finish();

 private:
  struct Output {
    void* device_data;
    const void* host_data;
    std::size_t bytes;
  };
  HostTensor stage(const DLTensor* tensor, std::string_view name, Accept accept, bool copy_in);
  void* copy_stream() const;
  BackendMemory* device_;
  void* stream_;
  DeviceTensors device_tensors_;
  std::vector<std::vector<unsigned char>> copies_;
  std::vector<Output> outputs_;
  std::vector<NamedBytes> read_, written_;  // the caller's tensors, where they are
};

/// Throws shape_mismatch `NAME shape must be (2, 3, 64), got (2, 3, 32)` unless equal.
void expect_shape(std::string_view name, const std::vector<std::int64_t>& expected,
                  const std::vector<std::int64_t>& got);

}  // namespace embedkit::detail
