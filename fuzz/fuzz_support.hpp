#pragma once
// What the fuzz targets share: checks that turn a broken promise into a crash (libFuzzer keeps the
// input that caused it), and a scratch directory for targets that read files.

#include <embedkit/status.hpp>

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace embedkit::fuzz {

/// Aborts with `what` unless `ok`.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

/// Prints a line when EMBEDKIT_FUZZ_TRACE is set: what each input did, for reading a corpus or a crash.
[[gnu::format(printf, 1, 2)]] inline void trace(const char* format, ...) {
  static const bool enabled = std::getenv("EMBEDKIT_FUZZ_TRACE") != nullptr;
  if (!enabled) return;
  std::va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
}

/// Runs `call` and says whether it returned. An embedkit::Error must not be Status::internal;
/// `status_out` (when given) receives its status. Any other exception escapes, which is a crash.
template <class Call>
bool succeeds(Call&& call, Status* status_out = nullptr) {
  try {
    call();
    trace("ok");
    return true;
  } catch (const Error& e) {
    trace("%s: %s", status_name(e.status()), e.what());
    if (e.status() == Status::internal) std::fprintf(stderr, "EK_INTERNAL: %s\n", e.what());
    require(e.status() != Status::internal, "a bad input was reported as an internal error");
    if (status_out != nullptr) *status_out = e.status();
    return false;
  }
}

/// A directory of this process's own under $TMPDIR (or /tmp), removed at exit.
inline const std::string& scratch_directory() {
  static const std::string directory = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/embedkit-fuzz-XXXXXX";
    require(::mkdtemp(pattern.data()) != nullptr, "cannot create a scratch directory");
    return pattern;
  }();
  static const bool cleanup = [] {
    return std::atexit([] {
             std::error_code ignored;
             std::filesystem::remove_all(directory, ignored);
           }) == 0;
  }();
  (void)cleanup;
  return directory;
}

/// Writes `bytes` to `path`, replacing it.
inline void write_file(const std::string& path, const std::string& bytes) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  require(file != nullptr, "cannot write a scratch file");
  require(std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size(), "cannot write a scratch file");
  std::fclose(file);
}

}  // namespace embedkit::fuzz
