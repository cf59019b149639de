#include "core/shape.hpp"

#include <embedkit/status.hpp>

#include "core/expects.hpp"

#include <fmt/format.h>

#include <limits>
#include <vector>

namespace embedkit::detail {

std::int64_t checked_numel(std::span<const std::int64_t> shape, std::string_view what, std::size_t bytes_per_element) {
  std::int64_t numel = 1;
  bool overflow = false;
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    EMBEDKIT_EXPECTS(shape[axis] >= 0, Status::invalid_argument, "{} has a negative dimension: shape[{}] = {}", what,
                     axis, shape[axis]);
    if (!overflow && __builtin_mul_overflow(numel, shape[axis], &numel)) overflow = true;
  }
  // A zero anywhere makes the product 0 even after an overflowing prefix.
  for (const std::int64_t extent : shape) {
    if (extent == 0) return 0;
  }
  const auto max_elements = std::numeric_limits<std::size_t>::max() / bytes_per_element;
  if (overflow || static_cast<std::uint64_t>(numel) > max_elements) {
    throw Error(Status::invalid_argument,
                fmt::format("{} shape {} has more elements than memory can address", what, format_shape(shape)));
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

std::vector<std::int64_t> lookup_shape(std::span<const std::int64_t> indices_shape, std::int64_t dim) {
  std::vector<std::int64_t> shape(indices_shape.begin(), indices_shape.end());
  shape.push_back(dim);
  return shape;
}

std::int64_t bag_count(std::span<const std::int64_t> offsets) {
  return offsets.empty() ? 0 : static_cast<std::int64_t>(offsets.size()) - 1;
}

Array<float> lookup_output(const IndexTensor& indices, std::int64_t dim) {
  Array<float> out;
  out.shape = lookup_shape(indices.shape(), dim);
  out.values =
      Buffer<float>::uninitialized(static_cast<std::size_t>(checked_numel(out.shape, "lookup output", sizeof(float))));
  return out;
}

Array<float> pooled_output(std::span<const std::int64_t> offsets, std::int64_t dim) {
  Array<float> out;
  out.shape = {bag_count(offsets), dim};
  out.values =
      Buffer<float>::uninitialized(static_cast<std::size_t>(checked_numel(out.shape, "pooled output", sizeof(float))));
  return out;
}

namespace {

// Whether `got` is rows × dim, without the product wrapping around.
bool holds_floats(std::size_t got, std::int64_t rows, std::int64_t dim) {
  std::size_t want = 0;
  return rows >= 0 && dim >= 0 &&
         !__builtin_mul_overflow(static_cast<std::size_t>(rows), static_cast<std::size_t>(dim), &want) && got == want;
}

}  // namespace

void expect_floats(std::string_view what, std::size_t got, std::int64_t rows, std::int64_t dim) {
  EMBEDKIT_EXPECTS(holds_floats(got, rows, dim), Status::shape_mismatch, "{} must hold {} x {} floats, got {}", what,
                   rows, dim, got);
}

void expect_floats(std::string_view what, std::size_t got, std::int64_t rows, std::int64_t dim, std::string_view unit) {
  EMBEDKIT_EXPECTS(holds_floats(got, rows, dim), Status::shape_mismatch,
                   "{} must hold {} x {} floats for {} {}, got {}", what, rows, dim, rows, unit, got);
}

void expect_floats(std::string_view what, std::size_t got, const IndexTensor& indices, std::int64_t dim) {
  EMBEDKIT_EXPECTS(holds_floats(got, indices.size(), dim), Status::shape_mismatch,
                   "{} must hold {} x {} floats for indices of shape {}, got {}", what, indices.size(), dim,
                   format_shape(indices.shape()), got);
}

}  // namespace embedkit::detail
