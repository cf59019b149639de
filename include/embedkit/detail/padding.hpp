#pragma once
// C++17, host and device. A table's padding_idx as every operation below the table takes it
// (gathers, pooling, folds, sparse gradients, optimizer updates, on each backend): a flag and an id.
// Not a sentinel id meaning "none": every value can arrive as an id, and with -1 as "none" the
// pooled paths, which ask "padding?" before "in the table?", skipped id -1 as padding instead of
// flagging it (docs/reliability.md, round two, item 12). Shared by cpu/, kernels/ and src/.

#include <embedkit/detail/host_device.hpp>

#include <cstdint>

namespace embedkit::detail {

struct Padding {
  bool enabled = false;  // whether the table has a padding_idx
  std::int64_t id = 0;   // which id it is (meaningful only when enabled)

  /// Whether `candidate` is the padding id; never when the table has none.
  EK_HOST_DEVICE bool is(std::int64_t candidate) const { return enabled && candidate == id; }
};

}  // namespace embedkit::detail
