#pragma once
// Host memory: how much a new allocation may take.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace embedkit::detail {

/// Bytes a new allocation can take without swapping or being killed: the smallest of
/// /proc/meminfo's MemAvailable and, for each memory cgroup /proc/self/cgroup puts this process in
/// (v1's memory controller and v2's unified hierarchy, found through /proc/self/mountinfo), each
/// limit minus usage from the group up to its hierarchy's root, usage less the inactive file cache
/// (memory.stat), which the kernel reclaims before it kills. Never relies on malloc failing, which
/// overcommit makes a lie; never throws (unreadable or odd cgroup files leave MemAvailable).
std::uint64_t host_memory_available();
/// The same, reading /proc and /sys under `root` instead of "/" (tests point it at fixture files).
std::uint64_t host_memory_available(std::string_view root);

}  // namespace embedkit::detail
