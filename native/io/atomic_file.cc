#include "atomic_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace clip::io {
namespace {

std::string errno_text() { return std::strerror(errno); }

std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Several saves from one process (worker threads) must not share a temporary.
std::string temporary_sibling(const std::string& target) {
  static std::atomic<unsigned> sequence{0};
  return directory_of(target) + "/." + base_name_of(target) + "." +
         std::to_string(::getpid()) + "." + std::to_string(sequence++) + ".tmp";
}

void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // some filesystems refuse; the rename already happened
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::string target_path)
    : target_(std::move(target_path)), temp_(temporary_sibling(target_)) {
  if (target_.empty()) throw std::runtime_error("cannot write a file with an empty path");
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error(target_ + ": cannot create temporary file " + temp_ + ": " + errno_text());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  auto bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, bytes, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(target_ + ": write failed: " + errno_text());
    }
    bytes += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) throw std::runtime_error(target_ + ": fsync failed: " + errno_text());
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw std::runtime_error(target_ + ": close failed: " + errno_text());
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    throw std::runtime_error(target_ + ": rename from " + temp_ + " failed: " + errno_text());
  committed_ = true;
  fsync_directory(directory_of(target_));
}

}  // namespace clip::io
