#include <embedkit/status.hpp>
#include <embedkit/tensor.hpp>

#include "core/shape.hpp"

namespace embedkit {
namespace {

std::int64_t checked_index_count(const void* data, const std::vector<std::int64_t>& shape, std::size_t element_bytes) {
  if (shape.size() > static_cast<std::size_t>(detail::kMaxRank)) {
    throw Error(Status::invalid_argument, "indices rank " + std::to_string(shape.size()) + " exceeds the maximum of " +
                                              std::to_string(detail::kMaxRank));
  }
  const std::int64_t size = detail::checked_numel(shape, "indices", element_bytes);
  if (data == nullptr && size > 0) {
    throw Error(Status::invalid_argument, "indices data is NULL for a non-empty shape " + detail::format_shape(shape));
  }
  return size;
}

}  // namespace

IndexTensor::IndexTensor(const std::int32_t* data, std::vector<std::int64_t> shape)
    : data_(data),
      type_(IndexType::int32),
      shape_(std::move(shape)),
      size_(checked_index_count(data_, shape_, sizeof(std::int32_t))) {}

IndexTensor::IndexTensor(const std::int64_t* data, std::vector<std::int64_t> shape)
    : data_(data),
      type_(IndexType::int64),
      shape_(std::move(shape)),
      size_(checked_index_count(data_, shape_, sizeof(std::int64_t))) {}

IndexTensor::IndexTensor(std::span<const std::int32_t> ids)
    : IndexTensor(ids.data(), {static_cast<std::int64_t>(ids.size())}) {}

IndexTensor::IndexTensor(std::span<const std::int64_t> ids)
    : IndexTensor(ids.data(), {static_cast<std::int64_t>(ids.size())}) {}

}  // namespace embedkit
