// Replace a file so a reader sees either the old content or the new one,
// never a torn file: write a sibling temporary, fsync, rename, fsync the dir.
#pragma once

#include <cstddef>
#include <string>

namespace clip::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string target_path);
  ~AtomicFile();  // removes the temporary unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void commit();

  const std::string& target() const { return target_; }

 private:
  std::string target_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace clip::io
