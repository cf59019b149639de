#pragma once
// C++17, host and device. A table's padding_idx as its operations see it: a flag and an id. Not a
// sentinel id meaning "none": every value can arrive as an id, and with -1 as "none" the pooled
// paths, which ask "padding?" before "in the table?", skipped id -1 as padding instead of flagging
// it (docs/reliability.md, round two, item 12). Shared by cpu/, kernels/ and src/.

#include <embedkit/detail/host_device.hpp>

#include <cstdint>

namespace embedkit::detail {

struct Padding {
  bool enabled = false;  // whether the table has a padding_idx
  std::int64_t id = 0;   // which id it is (meaningful only when enabled)

  /// Whether `candidate` is the padding id; never when the table has none.
  EK_HOST_DEVICE bool is(std::int64_t candidate) const { return enabled && candidate == id; }
  /// The id, or -1 for none, for the gathers, folds and updates that keep an int64 parameter: they
  /// test an id's range before comparing it with padding, so an id of -1 never reaches that test.
  EK_HOST_DEVICE std::int64_t id_or_none() const { return enabled ? id : -1; }
};

}  // namespace embedkit::detail
