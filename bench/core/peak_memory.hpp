#pragma once
// Peak memory of one call, from the kernel's resident-set high-water mark (Linux).

#include <cstdint>
#include <functional>

namespace embedkit::bench {

/// Runs `call` once and returns how far the process's resident memory rose above its level before
/// the call, at the call's peak (VmHWM after resetting it through /proc/self/clear_refs), or -1
/// when the kernel does not allow the reset. Sets glibc's mmap threshold to 1 MiB on first use, so
/// large buffers freed before the call do not hide the call's own allocations.
std::int64_t peak_resident_growth(const std::function<void()>& call);

}  // namespace embedkit::bench
