#include "core/offsets.hpp"

#include <embedkit/status.hpp>

#include <fmt/format.h>

namespace embedkit::detail {

void check_offsets(std::span<const std::int64_t> offsets, std::int64_t index_count) {
  if (offsets.empty()) {
    throw Error(Status::invalid_argument, "offsets must hold bags + 1 entries (at least 1), got 0");
  }
  if (offsets[0] != 0) {
    throw Error(Status::invalid_argument, fmt::format("offsets[0] = {} must be 0", offsets[0]));
  }
  for (std::size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i] < offsets[i - 1]) {
      throw Error(Status::invalid_argument,
                  fmt::format("offsets[{}] = {} is less than offsets[{}] = {}; offsets must not decrease", i,
                              offsets[i], i - 1, offsets[i - 1]));
    }
  }
  const std::size_t last = offsets.size() - 1;
  if (offsets[last] != index_count) {
    throw Error(Status::invalid_argument,
                fmt::format("offsets[{}] = {} (the last) must equal the number of indices, {}", last,
                            offsets[last], index_count));
  }
}

}  // namespace embedkit::detail
