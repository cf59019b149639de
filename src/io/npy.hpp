#pragma once
// NumPy's .npy format (versions 1.0 to 3.0) for float32 matrices, and the float16 and bfloat16
// (as '<u2') rows of a narrower table: what checkpoints write, and what checkpoints and pretrained
// vectors read, with every malformation named.

#include <embedkit/dtype.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace embedkit::detail {

/// A float32 array read from a .npy file.
struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

/// The bytes of a version 1.0 .npy file holding `values` as little-endian float32 of `shape`.
std::string npy_bytes(const float* values, const std::vector<std::int64_t>& shape);
/// The same for `values` stored as `type`: float32 '<f4', float16 '<f2', bfloat16 '<u2' (NumPy has
/// no bfloat16: its bits, with the type kept beside the file, as checkpoints do in their manifest).
std::string npy_bytes(const void* values, DType type, const std::vector<std::int64_t>& shape);

/// The .npy dtype string `type` is stored as: "<f4", "<f2" or "<u2".
const char* npy_descr(DType type);

/// Parses the bytes of a .npy file named `name` in messages. Throws Error(io_error) naming the file
/// for a wrong magic, an unknown version, a header that is not the dict literal numpy writes (read
/// as Python reads it, never by searching its text), a dtype other than little-endian float32,
/// Fortran order, or a payload whose size does not match the shape.
NpyArray parse_npy(std::string_view bytes, std::string_view name);
/// The same for a file holding `type` (its descr npy_descr(type)), the values widened to float32 (exact).
NpyArray parse_npy(std::string_view bytes, std::string_view name, DType type);

/// The bytes of the .npy file at `path` (named `name` in messages), read whole only once its size
/// matches `shape` (or, without one, the shape in its own header): a file too large or too small is
/// Error(io_error) `NAME: shape (3, 4) needs 48 bytes of data, the file holds 107374182400`,
/// before memory is spent on it. The bytes still need parse_npy.
/// Without `shape`, `accept_shape` (when given) is called with the header's shape once the size has
/// been checked against it, before the file is read: a caller that knows what it will take (a table's
/// set_weights) refuses a 16 GiB matrix of the wrong shape without reading it.
/// `type` is the element type the file must hold (its bytes per value).
std::string read_npy_file(const std::string& path, std::string_view name,
                          const std::vector<std::int64_t>* shape = nullptr,
                          const std::function<void(const std::vector<std::int64_t>&)>& accept_shape = {},
                          DType type = DType::float32);

}  // namespace embedkit::detail
