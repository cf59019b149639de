#pragma once
/// @file tensor.hpp
/// @brief The tensor types of the C++ API: a borrowed index tensor in, an owning array out.

#include <embedkit/buffer.hpp>
#include <embedkit/export.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace embedkit {

/// @brief Element type of an index tensor.
enum class IndexType { int32, int64 };

/// @brief A borrowed, compact row-major host tensor of ids, of any rank (0-d included).
/// It does not own its data: the caller keeps it alive for the call.
class EMBEDKIT_API IndexTensor {
 public:
  /// @brief Views `data` as a tensor of `shape` (empty shape: a 0-d tensor holding one id).
  /// @throws Error(Status::invalid_argument) for a negative or overflowing shape, or NULL data
  ///         with a non-empty shape.
  IndexTensor(const std::int32_t* data, std::vector<std::int64_t> shape);
  IndexTensor(const std::int64_t* data, std::vector<std::int64_t> shape);
  /// @brief A 1-D tensor over a whole span.
  explicit IndexTensor(std::span<const std::int32_t> ids);
  explicit IndexTensor(std::span<const std::int64_t> ids);
  explicit IndexTensor(const std::vector<std::int32_t>& ids) : IndexTensor(std::span<const std::int32_t>(ids)) {}
  explicit IndexTensor(const std::vector<std::int64_t>& ids) : IndexTensor(std::span<const std::int64_t>(ids)) {}

  const void* data() const noexcept { return data_; }
  IndexType type() const noexcept { return type_; }
  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  /// @brief Number of ids: the product of the shape (1 for a 0-d tensor).
  std::int64_t size() const noexcept { return size_; }

 private:
  const void* data_;
  IndexType type_;
  std::vector<std::int64_t> shape_;
  std::int64_t size_;
};

/// @brief An owning, compact row-major array returned by the C++ API; its values' memory comes
/// from the output allocator and can be handed on (Buffer::release()).
template <class T>
struct Array {
  std::vector<std::int64_t> shape;
  Buffer<T> values;
};

/// @brief A named float32 array the caller owns, e.g. one optimizer state slot to restore.
struct NamedArray {
  std::string_view name;
  std::span<const float> values;
  std::span<const std::int64_t> shape;
};

}  // namespace embedkit
