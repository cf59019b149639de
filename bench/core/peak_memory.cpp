#include "peak_memory.hpp"

#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace embedkit::bench {
namespace {

// A field of /proc/self/status in bytes ("VmRSS:  1234 kB"), or -1.
std::int64_t status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == field + ":") {
      std::int64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    status.ignore(1 << 12, '\n');
  }
  return -1;
}

}  // namespace

std::int64_t peak_resident_growth(const std::function<void()>& call) {
  // glibc keeps freed memory resident, so the call could reuse earlier garbage unseen: for the call,
  // blocks of 1 MiB and more are mapped and unmapped, and what is free is handed back first, so
  // resident memory follows live memory. Afterwards the thresholds are those glibc's own dynamic
  // adjustment ends at (32 MiB, and twice that for trimming), so timed runs see a normal allocator.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  malloc_trim(0);
  struct Restore {
    ~Restore() {
      mallopt(M_MMAP_THRESHOLD, 32 << 20);
      mallopt(M_TRIM_THRESHOLD, 64 << 20);
    }
  } restore;
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";  // resets VmHWM to the current resident size
  clear_refs.close();
  const std::int64_t before = status_bytes("VmRSS");
  const bool reset = clear_refs.good() && status_bytes("VmHWM") <= before + (1 << 20);
  call();
  const std::int64_t peak = status_bytes("VmHWM");
  if (!reset || before < 0 || peak < 0) return -1;
  return std::max<std::int64_t>(0, peak - before);
}

}  // namespace embedkit::bench
