#pragma once
// Host memory: how much a new allocation may take, and the aligned buffer tables live in.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace embedkit::detail {

/// Bytes a new allocation can take without swapping or being killed: the smaller of
/// /proc/meminfo's MemAvailable and the cgroup's limit minus its usage. Never relies on
/// malloc failing, which overcommit makes a lie.
std::uint64_t host_memory_available();

struct FreeDeleter {
  void operator()(void* p) const noexcept;
};

/// A 64-byte aligned float buffer, not initialised.
using HostFloats = std::unique_ptr<float[], FreeDeleter>;

/// Allocates `count` floats after checking them against host_memory_available().
/// Throws Error(out_of_memory) naming `what` and both sizes when they do not fit.
HostFloats allocate_host_floats(std::uint64_t count, std::string_view what);

}  // namespace embedkit::detail
