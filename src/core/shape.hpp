#pragma once
// Shape arithmetic and its wording, shared by the C++ and C entry points.

#include <embedkit/tensor.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace embedkit::detail {

/// Largest rank accepted anywhere; deeper tensors are almost certainly garbage pointers.
constexpr int kMaxRank = 32;

/// Product of `shape`, 1 for rank 0. Throws invalid_argument naming `what` for a negative
/// dimension or a product that overflows int64 (or `bytes_per_element` times it, size_t).
std::int64_t checked_numel(std::span<const std::int64_t> shape, std::string_view what,
                           std::size_t bytes_per_element = 1);

/// Python's tuple spelling, as Keras and NumPy print shapes: "()", "(5,)", "(2, 3)".
std::string format_shape(std::span<const std::int64_t> shape);

/// The subscript of flat position `flat` in a row-major `shape`, as TensorFlow prints it:
/// "" for rank 0, "[7]" for rank 1, "[3,7]" for rank 2.
std::string format_position(std::span<const std::int64_t> shape, std::int64_t flat);

/// The shape of a lookup's rows (or their gradient): the indices' shape, then `dim`.
std::vector<std::int64_t> lookup_shape(std::span<const std::int64_t> indices_shape, std::int64_t dim);

/// The number of bags CSR `offsets` cut (one less than its entries; 0 when it has none).
std::int64_t bag_count(std::span<const std::int64_t> offsets);

/// An uninitialised output (the lookup writes it whole) for a lookup of `indices` from a table of
/// `dim` columns, sized lookup_shape(); throws as checked_numel() names "lookup output".
Array<float> lookup_output(const IndexTensor& indices, std::int64_t dim);

/// An uninitialised output for a pooled lookup of the bags `offsets` cut, (bags, dim); throws as
/// checked_numel() names "pooled output".
Array<float> pooled_output(std::span<const std::int64_t> offsets, std::int64_t dim);

/// The size checks of a buffer of `rows` × `dim` floats (an output, a gradient): unless `got` is
/// that product, Error(shape_mismatch) "WHAT must hold ROWS x DIM floats, got GOT".
void expect_floats(std::string_view what, std::size_t got, std::int64_t rows, std::int64_t dim);
/// The same with the rows counted in `unit`: "WHAT must hold 4 x 8 floats for 4 bags, got GOT".
void expect_floats(std::string_view what, std::size_t got, std::int64_t rows, std::int64_t dim, std::string_view unit);
/// The same with a row per id of `indices`: "WHAT must hold 6 x 8 floats for indices of shape (2, 3), got GOT".
void expect_floats(std::string_view what, std::size_t got, const IndexTensor& indices, std::int64_t dim);

}  // namespace embedkit::detail
