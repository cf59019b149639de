#pragma once
// Host memory: how much a new allocation may take.

#include <cstddef>
#include <cstdint>

namespace embedkit::detail {

/// Bytes a new allocation can take without swapping or being killed: the smaller of
/// /proc/meminfo's MemAvailable and the cgroup's limit minus its usage. Never relies on
/// malloc failing, which overcommit makes a lie.
std::uint64_t host_memory_available();

}  // namespace embedkit::detail
