#include "core/shape.hpp"

#include <embedkit/status.hpp>

#include <fmt/format.h>

#include <limits>
#include <vector>

namespace embedkit::detail {

std::int64_t checked_numel(std::span<const std::int64_t> shape, std::string_view what,
                           std::size_t bytes_per_element) {
  std::int64_t numel = 1;
  bool overflow = false;
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    if (shape[axis] < 0) {
      throw Error(Status::invalid_argument,
                  fmt::format("{} has a negative dimension: shape[{}] = {}", what, axis, shape[axis]));
    }
    if (!overflow && __builtin_mul_overflow(numel, shape[axis], &numel)) overflow = true;
  }
  // A zero anywhere makes the product 0 even after an overflowing prefix.
  for (const std::int64_t extent : shape) {
    if (extent == 0) return 0;
  }
  const auto max_elements = std::numeric_limits<std::size_t>::max() / bytes_per_element;
  if (overflow || static_cast<std::uint64_t>(numel) > max_elements) {
    throw Error(Status::invalid_argument,
                fmt::format("{} shape {} has more elements than memory can address", what,
                            format_shape(shape)));
  }
  return numel;
}

std::string format_shape(std::span<const std::int64_t> shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

std::string format_position(std::span<const std::int64_t> shape, std::int64_t flat) {
  if (shape.empty()) return "";
  std::vector<std::int64_t> subscript(shape.size());
  for (std::size_t axis = shape.size(); axis-- > 0;) {
    const std::int64_t extent = shape[axis] > 0 ? shape[axis] : 1;
    subscript[axis] = flat % extent;
    flat /= extent;
  }
  return fmt::format("[{}]", fmt::join(subscript, ","));
}

}  // namespace embedkit::detail
