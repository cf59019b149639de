#include "host_memory.hpp"



#include <algorithm>
#include <fstream>
#include <limits>
#include <string>

namespace embedkit::detail {
namespace {

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

}  // namespace embedkit::detail
