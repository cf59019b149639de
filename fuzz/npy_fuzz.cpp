// libFuzzer target: the .npy reader on arbitrary bytes. It reads them or throws Error(io_error);
// what it reads holds as many values as its shape says, and writing that back gives bytes that
// read the same.
#include "fuzz/fuzz_support.hpp"
#include "src/core/shape.hpp"
#include "src/io/npy.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using embedkit::detail::NpyArray;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<NpyArray> array;
  embedkit::Status status = embedkit::Status::ok;
  if (!embedkit::fuzz::succeeds([&] { array = embedkit::detail::parse_npy(bytes, "fuzz.npy"); }, &status)) {
    embedkit::fuzz::require(status == embedkit::Status::io_error, "a bad .npy file is not an io_error");
    return 0;
  }
  const auto count = embedkit::detail::checked_numel(array->shape, "shape", sizeof(float));
  embedkit::fuzz::require(array->values.size() == static_cast<std::size_t>(count), "values do not fill the shape");
  const NpyArray back =
      embedkit::detail::parse_npy(embedkit::detail::npy_bytes(array->values.data(), array->shape), "back.npy");
  embedkit::fuzz::require(back.shape == array->shape, "the shape does not round-trip");
  embedkit::fuzz::require(back.values.size() == array->values.size() &&
                              (back.values.empty() || std::memcmp(back.values.data(), array->values.data(),
                                                                  back.values.size() * sizeof(float)) == 0),
                          "the values do not round-trip");
  return 0;
}
