#pragma once
/// @file sparse_grad.hpp
/// @brief A sparse gradient: TensorFlow's IndexedSlices with duplicate ids folded.

#include <cstdint>
#include <vector>

namespace embedkit {

/// @brief The gradient of a table from one batch: row i of `rows` (dim floats) is the sum of the
/// upstream gradient rows of every position that looked up unique_ids[i], summed in the library's
/// canonical order (see detail/summation_order.hpp), so it is bitwise the same on any thread count.
struct SparseGrad {
  std::vector<std::int64_t> unique_ids;  ///< strictly increasing
  std::vector<float> rows;               ///< unique_ids.size() × dim, row-major
  std::int64_t dim = 0;
};

}  // namespace embedkit
