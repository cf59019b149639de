#pragma once
/// @file weights_view.hpp
/// @brief A CPU table's weights in place, for frameworks that want the matrix itself (PyTorch's
/// `module.weight`) rather than a copy.

#include <cstdint>
#include <memory>
#include <span>
#include <utility>

namespace embedkit {

/// @brief The weights of a CPU table as they are in memory: (rows, dim) float32, row-major, writable.
///
/// Reads and writes through it do not take the table's lock: they may see, or tear, a train step or
/// set_weights running at the same time, so the caller orders them. While any view of a table
/// lives, the calls that replace the table's memory (migrate) refuse with Status::failed_precondition.
/// The table must outlive its views (the C ABI's views keep their table alive).
class WeightsView {
 public:
  WeightsView() = default;
  /// `release` is called once, when the last copy of this view goes away.
  WeightsView(std::span<float> values, std::int64_t rows, std::int64_t dim, std::shared_ptr<void> release)
      : values_(values), rows_(rows), dim_(dim), release_(std::move(release)) {}

  /// @brief All rows × dim values.
  std::span<float> values() const noexcept { return values_; }
  /// @brief Number of rows (the table's input_dim).
  std::int64_t rows() const noexcept { return rows_; }
  /// @brief Width of a row (the table's output_dim).
  std::int64_t dim() const noexcept { return dim_; }

 private:
  std::span<float> values_;
  std::int64_t rows_ = 0;
  std::int64_t dim_ = 0;
  std::shared_ptr<void> release_;  // keeps the table's count of live views up while a copy exists
};

}  // namespace embedkit
