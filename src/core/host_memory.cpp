#include "core/host_memory.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace embedkit::detail {
namespace {

constexpr std::uint64_t kUnknown = std::numeric_limits<std::uint64_t>::max();

std::uint64_t meminfo_available(const std::string& root) {
  std::ifstream meminfo(root + "/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return kUnknown;
}

// A number of bytes from a cgroup file; "max" (v2's no limit) and anything unreadable are unknown.
std::uint64_t read_number(const std::string& path) {
  std::ifstream file(path);
  std::string text;
  if (!(file >> text) || text == "max") return kUnknown;
  try {
    std::size_t end = 0;
    const std::uint64_t value = std::stoull(text, &end);
    return end == text.size() ? value : kUnknown;
  } catch (const std::exception&) {
    return kUnknown;
  }
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

// mountinfo writes space, tab, newline and backslash in paths as \ooo octal escapes.
std::string unescape(const std::string& text) {
  const auto octal = [&text](std::size_t at) { return at < text.size() && text[at] >= '0' && text[at] <= '7'; };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out.push_back(static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// A mounted memory hierarchy: v2's unified one, or v1's with the memory controller.
struct Hierarchy {
  bool v2 = false;
  std::string mount_root;   // the group the mount shows at its mount point
  std::string mount_point;  // where, under the root directory
};

std::vector<Hierarchy> memory_hierarchies(const std::string& root) {
  std::vector<Hierarchy> found;
  std::ifstream mountinfo(root + "/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
    const std::vector<std::string> fields = split(line, ' ');
    const auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    const std::string& type = dash[1];
    const std::vector<std::string> options = split(dash[3], ',');
    const bool v1_memory = type == "cgroup" && std::find(options.begin(), options.end(), "memory") != options.end();
    if (type == "cgroup2" || v1_memory) found.push_back({type == "cgroup2", unescape(fields[3]), unescape(fields[4])});
  }
  return found;
}

// The inactive file cache of a cgroup directory, in bytes (0 when unreadable): memory.stat's
// `key` line. Usage counts this page cache, which the kernel reclaims before it kills.
std::uint64_t inactive_file(const std::string& stat_path, const std::string& key) {
  std::ifstream stat(stat_path);
  std::string name;
  std::uint64_t bytes = 0;
  while (stat >> name >> bytes) {
    if (name == key) return bytes;
  }
  return 0;
}

// The smallest limit minus usage over `group` and its ancestors up to the hierarchy's mount point:
// a parent's limit caps every group below it, whatever the group's own says.
std::uint64_t hierarchy_available(const std::string& root, const Hierarchy& hierarchy, const std::string& group) {
  // The part of the group's path below the mount's root (a container's mount shows only its own
  // group). A path prefix, not a string one: mount root /docker/abc is no ancestor of /docker/abcd.
  std::string below = group;
  if (hierarchy.mount_root != "/") {
    if (below.compare(0, hierarchy.mount_root.size(), hierarchy.mount_root) != 0) return kUnknown;
    below.erase(0, hierarchy.mount_root.size());
  }
  if (!below.empty() && below.front() != '/') return kUnknown;
  while (!below.empty() && below.back() == '/') below.pop_back();  // "/" is the mount point itself
  const std::string limit_file = hierarchy.v2 ? "/memory.max" : "/memory.limit_in_bytes";
  const std::string usage_file = hierarchy.v2 ? "/memory.current" : "/memory.usage_in_bytes";
  // v1's inactive_file is the group's own; total_inactive_file counts those below, as usage does.
  const std::string inactive_key = hierarchy.v2 ? "inactive_file" : "total_inactive_file";
  std::uint64_t available = kUnknown;
  while (true) {
    const std::string directory = root + hierarchy.mount_point + below;
    const std::uint64_t limit = read_number(directory + limit_file);
    std::uint64_t usage = read_number(directory + usage_file);
    if (limit != kUnknown && usage != kUnknown) {
      usage -= std::min(usage, inactive_file(directory + "/memory.stat", inactive_key));
      available = std::min(available, limit > usage ? limit - usage : 0);
    }
    const std::size_t slash = below.find_last_of('/');
    if (slash == std::string::npos) break;
    below.erase(slash);
  }
  return available;
}

// The tightest memory limit of the groups /proc/self/cgroup puts this process in, v1 and v2.
std::uint64_t cgroup_available(const std::string& root) {
  const std::vector<Hierarchy> hierarchies = memory_hierarchies(root);
  std::ifstream cgroups(root + "/proc/self/cgroup");
  std::string line;
  std::uint64_t available = kUnknown;
  while (std::getline(cgroups, line)) {
    // hierarchy-id:controllers:path; v2's line is 0::path
    const std::size_t first = line.find(':');
    const std::size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::vector<std::string> controllers = split(line.substr(first + 1, second - first - 1), ',');
    const bool v2 = line.compare(0, second + 1, "0::") == 0;
    const bool v1_memory = std::find(controllers.begin(), controllers.end(), "memory") != controllers.end();
    if (!v2 && !v1_memory) continue;
    const std::string group = line.substr(second + 1);
    for (const Hierarchy& hierarchy : hierarchies) {
      if (hierarchy.v2 == v2) available = std::min(available, hierarchy_available(root, hierarchy, group));
    }
  }
  return available;
}

}  // namespace

std::uint64_t host_memory_available() { return host_memory_available("/"); }

std::uint64_t host_memory_available(std::string_view root) {
  // Paths are written root + "/proc/...": the real root is the empty prefix.
  const std::string base(root == "/" ? std::string_view() : root);
  // A probe, not a judge: whatever the cgroup files say, it never fails an allocation by throwing.
  std::uint64_t cgroup = kUnknown;
  try {
    cgroup = cgroup_available(base);
  } catch (const std::exception&) {
  }
  return std::min(meminfo_available(base), cgroup);
}

}  // namespace embedkit::detail
