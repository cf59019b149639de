#pragma once
// Whole-file reads and durable writes (written, fsynced, then renamed into place by the caller), each
// failure an Error(io_error) naming the file and the system's reason.

#include <functional>
#include <string>
#include <string_view>

namespace embedkit::detail {

/// The whole content of `path`.
std::string read_file(const std::string& path);

/// Creates `path` (which must not exist), writes `bytes`, and fsyncs it before closing.
void write_file_durably(const std::string& path, std::string_view bytes);

/// Renames `from` over `to` atomically (rename(2)).
void replace_file(const std::string& from, const std::string& to);

/// fsyncs the directory, so that the names created or renamed in it survive a crash.
void sync_directory(const std::string& directory);

/// Creates `directory` if it is missing (one level).
void ensure_directory(const std::string& directory);

/// Refuses an empty checkpoint directory, which would otherwise put the checkpoint's files at the
/// filesystem's root ("" + "/manifest.json"): Error(invalid_argument).
void check_checkpoint_directory(std::string_view directory);

/// Called between every write of a checkpoint save with a name for the point reached; tests install
/// a hook that stops the process there. Not for production use.
using FaultHook = std::function<void(std::string_view point)>;
void set_checkpoint_fault_hook(FaultHook hook);
void checkpoint_fault_point(std::string_view point);

}  // namespace embedkit::detail
