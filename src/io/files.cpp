#include "io/files.hpp"

#include <embedkit/status.hpp>

#include "core/expects.hpp"
#include "core/log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <utility>

namespace embedkit::detail {
namespace {

[[noreturn]] void fail(std::string_view what, const std::string& path) {
  throw Error(Status::io_error, fmt::format("{}: {}: {}", path, what, std::strerror(errno)));
}

// Closes a descriptor on every path out.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::mutex hook_mutex;
FaultHook fault_hook;

}  // namespace

InputFile::InputFile(std::string path) : path_(std::move(path)), fd_(-1), size_(0) {
  // O_NONBLOCK: open(2) of a FIFO waits for a writer; with it, it returns and fstat refuses the FIFO.
  const auto not_regular = [&] { return Error(Status::io_error, fmt::format("{}: not a regular file", path_)); };
  Descriptor fd(::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  struct stat info {};
  if (fd.get() < 0) {
    const int reason = errno;
    // A socket cannot be opened at all (ENXIO): said as what it is, like any other special file.
    if (::stat(path_.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) throw not_regular();
    errno = reason;
    fail("cannot open", path_);
  }
  if (::fstat(fd.get(), &info) != 0) fail("cannot stat", path_);
  if (!S_ISREG(info.st_mode)) throw not_regular();
  // Reads of a regular file never block anyway; cleared so the descriptor reads as any other.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) fail("cannot clear O_NONBLOCK on", path_);
  size_ = static_cast<std::uint64_t>(info.st_size);
  fd_ = fd.release();
}

InputFile::~InputFile() { ::close(fd_); }

std::string InputFile::read(std::uint64_t offset, std::uint64_t count) const {
  const std::uint64_t available = offset < size_ ? size_ - offset : 0;
  std::string bytes(static_cast<std::size_t>(std::min(count, available)), '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pread(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read", path_);
    if (n == 0) break;  // shorter than at the open
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

std::string read_file(const std::string& path, std::uint64_t max_bytes) {
  const InputFile file(path);
  EMBEDKIT_EXPECTS(file.size() <= max_bytes, Status::io_error, "{}: the file holds {} bytes, more than the {} it may",
                   path, file.size(), max_bytes);
  return file.read(0, file.size());
}

void write_file_durably(const std::string& path, std::string_view bytes) {
  Descriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail("cannot create", path);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write", path);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail("cannot fsync", path);
  if (::close(fd.release()) != 0) fail("cannot close", path);
}

void replace_file(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) fail("cannot rename to " + to, from);
}

void sync_directory(const std::string& directory) {
  Descriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail("cannot open directory", directory);
  if (::fsync(fd.get()) != 0) fail("cannot fsync directory", directory);
}

void ensure_directory(const std::string& directory) {
  if (::mkdir(directory.c_str(), 0755) != 0 && errno != EEXIST) fail("cannot create directory", directory);
  struct stat info {};
  EMBEDKIT_EXPECTS(::stat(directory.c_str(), &info) == 0 && S_ISDIR(info.st_mode), Status::io_error,
                   "{}: not a directory", directory);
}

DirectoryLock::DirectoryLock(const std::string& directory) : fd_(-1) {
  Descriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail("cannot open directory", directory);
  int result = 0;
  while ((result = ::flock(fd.get(), LOCK_EX)) != 0 && errno == EINTR) {
  }
  if (result != 0) {
    // NFS emulates flock with fcntl locks, whose exclusive kind needs a descriptor open for writing,
    // which a directory's cannot be: EBADF there, as ENOLCK or EOPNOTSUPP where locks are missing.
    if (errno != ENOLCK && errno != EOPNOTSUPP && errno != EBADF) fail("cannot lock directory", directory);
    logger().warn("{}: cannot lock the directory ({}); concurrent saves into it are not serialised", directory,
                  std::strerror(errno));
  }
  fd_ = fd.release();
}

DirectoryLock::~DirectoryLock() { ::close(fd_); }  // closing the last descriptor releases the lock

void set_checkpoint_fault_hook(FaultHook hook) {
  std::lock_guard lock(hook_mutex);
  fault_hook = std::move(hook);
}

void checkpoint_fault_point(std::string_view point) {
  FaultHook hook;
  {
    std::lock_guard lock(hook_mutex);
    hook = fault_hook;
  }
  if (hook) hook(point);
}

void check_checkpoint_directory(std::string_view directory) {
  EMBEDKIT_EXPECTS(!directory.empty(), Status::invalid_argument,
                   "checkpoint directory is empty (use \".\" for this one)");
}

}  // namespace embedkit::detail
