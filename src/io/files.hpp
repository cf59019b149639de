#pragma once
// Whole-file reads and durable writes (written, fsynced, then renamed into place by the caller), each
// failure an Error(io_error) naming the file and the system's reason.

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>

namespace embedkit::detail {

/// A regular file open for reading: the one way every reader (checkpoints, sharded checkpoints,
/// pretrained files, .npy files, the tool) opens a file. The open never blocks (a FIFO without a
/// writer would block open(2) forever), and a FIFO, socket, device or directory is
/// Error(io_error) `PATH: not a regular file`, at once. Symlinks to regular files are followed.
class InputFile {
 public:
  explicit InputFile(std::string path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// The size fstat(2) gave at the open.
  std::uint64_t size() const { return size_; }
  /// Up to `count` bytes from `offset` (fewer only where the file ends sooner).
  std::string read(std::uint64_t offset, std::uint64_t count) const;

 private:
  std::string path_;
  int fd_;
  std::uint64_t size_;
};

/// The whole content of `path`, read through InputFile. A file of more than `max_bytes` is
/// Error(io_error) naming it and both sizes, before any memory is spent on it.
std::string read_file(const std::string& path, std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max());

/// Creates `path` (which must not exist), writes `bytes`, and fsyncs it before closing.
void write_file_durably(const std::string& path, std::string_view bytes);

/// Renames `from` over `to` atomically (rename(2)).
void replace_file(const std::string& from, const std::string& to);

/// fsyncs the directory, so that the names created or renamed in it survive a crash.
void sync_directory(const std::string& directory);

/// Creates `directory` if it is missing (one level).
void ensure_directory(const std::string& directory);

/// An exclusive flock(2) on `directory` itself, held until destroyed: what serialises checkpoint
/// saves into one directory, between threads (each lock opens its own descriptor, and flock locks
/// belong to the open file) and between processes. Released by the kernel if the process dies.
/// Blocks while another holder has it. A directory that cannot be opened is Error(io_error) naming
/// it; a filesystem without flock support for it (ENOLCK, EOPNOTSUPP, EBADF on NFS) is only a
/// warning, and the save then proceeds unserialised.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& directory);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_;
};

/// Refuses an empty checkpoint directory, which would otherwise put the checkpoint's files at the
/// filesystem's root ("" + "/manifest.json"): Error(invalid_argument).
void check_checkpoint_directory(std::string_view directory);

/// Called between every write of a checkpoint save with a name for the point reached; tests install
/// a hook that stops the process there. Not for production use.
using FaultHook = std::function<void(std::string_view point)>;
void set_checkpoint_fault_hook(FaultHook hook);
void checkpoint_fault_point(std::string_view point);

}  // namespace embedkit::detail
