#include "capi/dlpack_view.hpp"

#include <embedkit/status.hpp>

#include "core/call_stream.hpp"
#include "core/expects.hpp"
#include "core/shape.hpp"
#include "placement/context_impl.hpp"

#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace embedkit::detail {
namespace {

// DLPack >= 0.8 names code 6 kDLBool; the installed header may predate it.
constexpr std::uint8_t kDLBoolCode = 6;

std::string dtype_name(DLDataType dtype) {
  std::string base;
  switch (dtype.code) {
    case kDLInt: base = fmt::format("int{}", dtype.bits); break;
    case kDLUInt: base = fmt::format("uint{}", dtype.bits); break;
    case kDLFloat: base = fmt::format("float{}", dtype.bits); break;
    case kDLBfloat: base = fmt::format("bfloat{}", dtype.bits); break;
    case kDLComplex: base = fmt::format("complex{}", dtype.bits); break;
    case kDLOpaqueHandle: base = "opaque handle"; break;
    case kDLBoolCode: base = "bool"; break;
    default: base = fmt::format("type code {} of {} bits", dtype.code, dtype.bits); break;
  }
  return dtype.lanes == 1 ? base : fmt::format("{}x{}", base, dtype.lanes);
}

bool is(DLDataType dtype, std::uint8_t code, std::uint8_t bits) {
  return dtype.code == code && dtype.bits == bits && dtype.lanes == 1;
}

void check_dtype(DLDataType dtype, std::string_view name, Accept accept) {
  switch (accept) {
    case Accept::index:
      EMBEDKIT_EXPECTS(is(dtype, kDLInt, 32) || is(dtype, kDLInt, 64), Status::dtype_mismatch,
                       "{} must be int32 or int64, got {}", name, dtype_name(dtype));
      return;
    case Accept::int64:
      EMBEDKIT_EXPECTS(is(dtype, kDLInt, 64), Status::dtype_mismatch, "{} must be int64, got {}", name,
                       dtype_name(dtype));
      return;
    case Accept::float32:
      EMBEDKIT_EXPECTS(is(dtype, kDLFloat, 32), Status::dtype_mismatch, "{} must be float32, got {}", name,
                       dtype_name(dtype));
      return;
    case Accept::mask:
      EMBEDKIT_EXPECTS(is(dtype, kDLUInt, 8) || is(dtype, kDLBoolCode, 8), Status::dtype_mismatch,
                       "{} must be uint8 or bool, got {}", name, dtype_name(dtype));
      return;
  }
}

// The device type as the integer the caller stored. A C caller may store any int in the enum field,
// and C++ may not load an enum whose value lies outside its enumerators' range (UBSan: -fsanitize=enum).
int device_type_of(const DLTensor& tensor) {
  std::underlying_type_t<DLDeviceType> type;
  static_assert(sizeof type == sizeof tensor.device.device_type);
  std::memcpy(&type, &tensor.device.device_type, sizeof type);
  return static_cast<int>(type);
}

bool in_device_memory(const DLTensor& tensor, std::string_view name) {
  const int type = device_type_of(tensor);
  // Pinned and managed (unified) memory are addressable from the host: read in place.
  if (type == kDLCPU || type == kDLCUDAHost || type == kDLCUDAManaged) return false;
  if (type == kDLCUDA) return true;
  throw Error(Status::unsupported,
              fmt::format("{} is on DLPack device type {}, which embedkit does not support; pass a host or CUDA tensor",
                          name, type));
}

void check_strides(const DLTensor& tensor, std::string_view name, const std::vector<std::int64_t>& shape) {
  if (tensor.strides == nullptr) return;
  std::int64_t expected = 1;
  std::vector<std::int64_t> compact(shape.size());
  for (std::size_t axis = shape.size(); axis-- > 0;) {
    compact[axis] = expected;
    expected *= shape[axis] > 0 ? shape[axis] : 1;
  }
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    // A stride along an axis of extent 0 or 1 is never used, and frameworks leave it arbitrary.
    EMBEDKIT_EXPECTS(shape[axis] <= 1 || tensor.strides[axis] == compact[axis], Status::invalid_argument,
                     "{} has strides {}, but embedkit needs compact row-major tensors (strides {} or NULL)", name,
                     format_shape(std::span(tensor.strides, shape.size())), format_shape(compact));
  }
}

}  // namespace

// The checks every tensor gets, wherever its memory is; data is left NULL for device tensors.
HostTensor checked_tensor(const DLTensor* tensor, std::string_view name, Accept accept, bool* on_device) {
  EMBEDKIT_EXPECTS(tensor != nullptr, Status::invalid_argument, "{} is NULL", name);
  // An output has one axis more than its ids, so tensors may be one rank above the ids' limit.
  constexpr int kMaxTensorRank = kMaxRank + 1;
  EMBEDKIT_EXPECTS(tensor->ndim >= 0 && tensor->ndim <= kMaxTensorRank, Status::invalid_argument,
                   "{} has ndim {}, expected 0 to {}", name, tensor->ndim, kMaxTensorRank);
  EMBEDKIT_EXPECTS(tensor->ndim == 0 || tensor->shape != nullptr, Status::invalid_argument,
                   "{} has ndim {} but a NULL shape", name, tensor->ndim);
  *on_device = in_device_memory(*tensor, name);
  check_dtype(tensor->dtype, name, accept);
  HostTensor view;
  view.shape.assign(tensor->shape, tensor->shape + tensor->ndim);
  const std::size_t element_bytes = tensor->dtype.bits / 8;
  view.size = checked_numel(view.shape, name, element_bytes);
  if (view.size > 0) check_strides(*tensor, name, view.shape);  // an empty tensor reads nothing
  if (tensor->data == nullptr) {
    EMBEDKIT_EXPECTS(view.size == 0, Status::invalid_argument, "{} data is NULL for a non-empty shape {}", name,
                     format_shape(view.shape));
    return view;
  }
  // An offset that wraps the address around would point before `data`; no allocation spans it.
  const auto base = reinterpret_cast<std::uintptr_t>(tensor->data);
  const auto bytes = static_cast<std::uintptr_t>(view.size) * element_bytes;
  constexpr auto kLastAddress = std::numeric_limits<std::uintptr_t>::max();
  EMBEDKIT_EXPECTS(tensor->byte_offset <= kLastAddress - base && bytes <= kLastAddress - base - tensor->byte_offset,
                   Status::invalid_argument,
                   "{} data + byte_offset {} + its {} bytes run past the end of the address space", name,
                   tensor->byte_offset, bytes);
  const std::uintptr_t address = base + tensor->byte_offset;
  EMBEDKIT_EXPECTS(address % element_bytes == 0, Status::invalid_argument,
                   "{} data + byte_offset {} is not aligned to its {}-byte elements", name, tensor->byte_offset,
                   element_bytes);
  view.data = reinterpret_cast<void*>(address);
  return view;
}

HostTensor TensorStaging::stage(const DLTensor* tensor, std::string_view name, Accept accept, bool copy_in) {
  bool on_device = false;
  HostTensor view = checked_tensor(tensor, name, accept, &on_device);
  (copy_in ? read_ : written_)
      .push_back({std::string(name), view.data, static_cast<std::size_t>(view.size) * (tensor->dtype.bits / 8)});
  if (!on_device || view.data == nullptr) return view;
  EMBEDKIT_EXPECTS(device_ != nullptr, Status::unsupported,
                   "{} is in CUDA memory (cuda:{}), but {}; pass a host tensor", name, tensor->device.device_id,
                   Context::default_context().impl().built_with_cuda ? "no CUDA device is usable here"
                                                                     : "this embedkit was built without CUDA");
  const std::size_t bytes = static_cast<std::size_t>(view.size) * (tensor->dtype.bits / 8);
  EMBEDKIT_EXPECTS(device_->owns(view.data, bytes), Status::invalid_argument,
                   "{} says it is in CUDA memory, but its data is not memory of {}", name, device_->name());
  if (device_tensors_ == DeviceTensors::in_place) return view;
  copies_.emplace_back(bytes);
  if (copy_in) {
    const BoundStream bound(*device_, copy_stream());
    device_->copy_to_host(copies_.back().data(), view.data, bytes);
  }
  void* device_data = view.data;
  view.data = copies_.back().data();
  if (!copy_in) outputs_.push_back({device_data, view.data, bytes});
  return view;
}

HostTensor TensorStaging::input(const DLTensor* tensor, std::string_view name, Accept accept) {
  return stage(tensor, name, accept, true);
}

IndexTensor TensorStaging::indices(const DLTensor* tensor, std::string_view name) {
  HostTensor view = input(tensor, name, Accept::index);
  if (tensor->dtype.bits == 32) return IndexTensor(static_cast<const std::int32_t*>(view.data), std::move(view.shape));
  return IndexTensor(static_cast<const std::int64_t*>(view.data), std::move(view.shape));
}

HostTensor TensorStaging::output(DLTensor* tensor, std::string_view name, Accept accept) {
  return stage(tensor, name, accept, false);
}

void TensorStaging::check_outputs_apart(std::vector<NamedBytes> also_read) const {
  also_read.insert(also_read.end(), read_.begin(), read_.end());
  detail::check_outputs_apart(written_, also_read);
}

void* TensorStaging::copy_stream() const { return device_tensor_stream(stream_); }

void TensorStaging::finish() {
  if (outputs_.empty()) return;
  const BoundStream bound(*device_, copy_stream());
  for (const Output& output : outputs_) device_->copy_from_host(output.device_data, output.host_data, output.bytes);
}

void expect_shape(std::string_view name, const std::vector<std::int64_t>& expected,
                  const std::vector<std::int64_t>& got) {
  EMBEDKIT_EXPECTS(expected == got, Status::shape_mismatch, "{} shape must be {}, got {}", name, format_shape(expected),
                   format_shape(got));
}

}  // namespace embedkit::detail
