#pragma once
// Scratch directories and their listings, for the tests that write checkpoints and files.

#include <dirent.h>
#include <stdlib.h>

#include <set>
#include <stdexcept>
#include <string>

namespace embedkit::testing {

/// A new empty directory under /tmp whose name starts with `prefix`.
inline std::string fresh_directory(const std::string& prefix = "embedkit-test") {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

/// The names in `directory`, without "." and ".."; empty when it cannot be read.
inline std::set<std::string> files_in(const std::string& directory) {
  std::set<std::string> names;
  if (DIR* dir = ::opendir(directory.c_str())) {
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.insert(name);
    }
    ::closedir(dir);
  }
  return names;
}

}  // namespace embedkit::testing
