#pragma once
// Peak memory of one call, from the kernel's resident-set high-water mark (Linux).

#include <cstdint>
#include <functional>

namespace embedkit::bench {

/// Runs `call` once and returns how far the process's resident memory rose above its level before
/// the call, at the call's peak (VmHWM after resetting it through /proc/self/clear_refs), or -1
/// when the kernel does not allow the reset. Leaves glibc's mmap threshold fixed at 32 MiB (where its
/// dynamic adjustment ends), since measuring needs it changed for the length of the call.
std::int64_t peak_resident_growth(const std::function<void()>& call);

}  // namespace embedkit::bench
