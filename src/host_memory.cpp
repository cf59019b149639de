#include "host_memory.hpp"

#include <embedkit/status.hpp>
#include <embedkit/summary.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

namespace embedkit::detail {
namespace {

constexpr std::size_t kAlignment = 64;  // one cache line; also what AVX-512 loads want
constexpr std::uint64_t kUnknown = std::numeric_limits<std::uint64_t>::max();

std::uint64_t meminfo_available() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return kUnknown;
}

std::uint64_t read_number(const char* path) {
  std::ifstream file(path);
  std::string text;
  if (!(file >> text) || text == "max") return kUnknown;
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    return kUnknown;
  }
}

std::uint64_t cgroup_available() {
  const std::uint64_t limit = read_number("/sys/fs/cgroup/memory.max");
  const std::uint64_t usage = read_number("/sys/fs/cgroup/memory.current");
  if (limit == kUnknown || usage == kUnknown) return kUnknown;
  return limit > usage ? limit - usage : 0;
}

}  // namespace

std::uint64_t host_memory_available() { return std::min(meminfo_available(), cgroup_available()); }

void FreeDeleter::operator()(void* p) const noexcept { std::free(p); }

HostFloats allocate_host_floats(std::uint64_t count, std::string_view what) {
  const std::uint64_t max_count = (std::numeric_limits<std::size_t>::max() - kAlignment) / sizeof(float);
  const std::uint64_t available = host_memory_available();
  if (count > max_count || count * sizeof(float) > available) {
    const std::string needed = count > max_count ? std::string("more than the address space")
                                                 : format_bytes(count * sizeof(float));
    throw Error(Status::out_of_memory,
                fmt::format("{} needs {} but only {} of host memory is available", what, needed,
                            format_bytes(available)));
  }
  const std::size_t bytes = std::max<std::size_t>(kAlignment, (count * sizeof(float) + kAlignment - 1) / kAlignment * kAlignment);
  void* memory = std::aligned_alloc(kAlignment, bytes);
  if (memory == nullptr) {
    throw Error(Status::out_of_memory, fmt::format("{}: allocating {} failed", what, format_bytes(bytes)));
  }
  return HostFloats(static_cast<float*>(memory));
}

}  // namespace embedkit::detail
