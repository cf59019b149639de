#include "cpu_backend.hpp"

#include <embedkit/status.hpp>
#include <embedkit/summary.hpp>

#include "core/host_memory.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace embedkit::detail {
namespace {

constexpr std::size_t kAlignment = 64;  // a cache line; what 512-bit vector loads want

// Buffers of at least kHugePageMinBytes (tables, optimizer state, large batches) are aligned to 2 MiB
// and advised to the kernel as huge-page candidates (transparent huge pages in "madvise" mode, the
// common default). A random row gather from a table beyond the cache misses the TLB on almost every
// row with 4 KiB pages; with 2 MiB pages the page walk mostly disappears. The
// advice is best effort: where THP is off it changes nothing.
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kHugePageMinBytes = 32 * kHugePage;

std::size_t round_up(std::size_t bytes, std::size_t alignment) {
  return std::max(alignment, (bytes + alignment - 1) / alignment * alignment);
}

}  // namespace

CpuBackend& CpuBackend::instance() {
  static CpuBackend backend;
  return backend;
}

MemoryInfo CpuBackend::memory_info() const {
  const std::uint64_t available = host_memory_available();
  return {available, available};
}

DeviceBuffer CpuBackend::allocate(std::size_t bytes, std::string_view what) {
  const bool huge = bytes >= kHugePageMinBytes;
  // Only a large buffer can outgrow what is left; asking /proc and the cgroup costs a few system
  // calls, too many for every step's scratch. A small one that fails is caught below.
  if (huge) {
    const std::uint64_t available = host_memory_available();
    if (bytes > available) {
      throw Error(Status::out_of_memory, fmt::format("{} needs {} but only {} of host memory is available", what,
                                                     format_bytes(bytes), format_bytes(available)));
    }
  }
  const std::size_t alignment = huge ? kHugePage : kAlignment;
  const std::size_t rounded = round_up(bytes, alignment);
  void* data = std::aligned_alloc(alignment, rounded);
  if (data == nullptr) {
    throw Error(Status::out_of_memory, fmt::format("{}: allocating {} failed", what, format_bytes(bytes)));
  }
  if (huge) (void)madvise(data, rounded, MADV_HUGEPAGE);  // advice: EINVAL where THP is compiled out
  return DeviceBuffer(this, data, bytes);
}

void CpuBackend::deallocate(void* data, std::size_t) noexcept { std::free(data); }

void CpuBackend::copy_from_host(void* destination, const void* host, std::size_t bytes) {
  if (bytes > 0) std::memcpy(destination, host, bytes);
}

void CpuBackend::copy_to_host(void* host, const void* source, std::size_t bytes) {
  if (bytes > 0) std::memcpy(host, source, bytes);
}

}  // namespace embedkit::detail
