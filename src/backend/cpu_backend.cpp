#include "cpu_backend.hpp"

#include <embedkit/status.hpp>
#include <embedkit/summary.hpp>

#include "../host_memory.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

namespace embedkit::detail {
namespace {

constexpr std::size_t kAlignment = 64;  // a cache line; what 512-bit vector loads want

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
  const std::uint64_t available = host_memory_available();
  if (bytes > available) {
    throw Error(Status::out_of_memory, fmt::format("{} needs {} but only {} of host memory is available", what,
                                                   format_bytes(bytes), format_bytes(available)));
  }
  const std::size_t rounded = std::max(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  void* data = std::aligned_alloc(kAlignment, rounded);
  if (data == nullptr) {
    throw Error(Status::out_of_memory, fmt::format("{}: allocating {} failed", what, format_bytes(bytes)));
  }
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
