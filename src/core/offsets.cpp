#include "core/offsets.hpp"

#include <embedkit/status.hpp>

#include "core/expects.hpp"

#include <fmt/format.h>

namespace embedkit::detail {

void check_offsets(std::span<const std::int64_t> offsets, std::int64_t index_count) {
  EMBEDKIT_EXPECTS(!offsets.empty(), Status::invalid_argument,
                   "offsets must hold bags + 1 entries (at least 1), got 0");
  EMBEDKIT_EXPECTS(offsets[0] == 0, Status::invalid_argument, "offsets[0] = {} must be 0", offsets[0]);
  for (std::size_t i = 1; i < offsets.size(); ++i) {
    EMBEDKIT_EXPECTS(offsets[i] >= offsets[i - 1], Status::invalid_argument,
                     "offsets[{}] = {} is less than offsets[{}] = {}; offsets must not decrease", i, offsets[i], i - 1,
                     offsets[i - 1]);
  }
  const std::size_t last = offsets.size() - 1;
  EMBEDKIT_EXPECTS(offsets[last] == index_count, Status::invalid_argument,
                   "offsets[{}] = {} (the last) must equal the number of indices, {}", last, offsets[last],
                   index_count);
}

}  // namespace embedkit::detail
