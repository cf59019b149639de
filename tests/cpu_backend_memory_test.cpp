// The CPU backend's buffers: cache-line aligned, and from 64 MiB up 2 MiB-aligned and advised as
// huge pages (MADV_HUGEPAGE shows as the "hg" flag of the mapping in /proc/self/smaps).
#include <gtest/gtest.h>

#include "cpu/cpu_backend.hpp"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace {

using embedkit::detail::CpuBackend;

constexpr std::size_t kMiB = std::size_t{1} << 20;

// The VmFlags of the mapping that holds `address`, or "" when none does.
std::string vm_flags_of(const void* address) {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (header >> std::hex >> begin >> dash >> end && dash == '-') {
      inside = begin <= at && at < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

bool has_flag(const std::string& flags, const std::string& flag) {
  std::istringstream words(flags);
  std::string word;
  while (words >> word) {
    if (word == flag) return true;
  }
  return false;
}

TEST(CpuBackendMemory, LargeBuffersAreHugePageAlignedAndAdvised) {
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {
    GTEST_SKIP() << "this kernel has no transparent huge pages: madvise(MADV_HUGEPAGE) is refused";
  }
  auto buffer = CpuBackend::instance().allocate(64 * kMiB + 12, "test table");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.as<void>()) % (2 * kMiB), 0u);
  const std::string flags = vm_flags_of(buffer.as<void>());
  ASSERT_FALSE(flags.empty()) << "no mapping holds the buffer";
  EXPECT_TRUE(has_flag(flags, "hg")) << flags;
}

TEST(CpuBackendMemory, SmallBuffersAreCacheLineAlignedAndNotAdvised) {
  auto buffer = CpuBackend::instance().allocate(16 * kMiB, "test scratch");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.as<void>()) % 64, 0u);
  EXPECT_FALSE(has_flag(vm_flags_of(buffer.as<void>()), "hg"));
}

}  // namespace
