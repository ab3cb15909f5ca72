// The records of a PyTorch zip archive (torch.save / torch.jit.save), by
// name relative to its single top folder, whatever that folder is called.
// What the records claim to hold is bounded before anything is allocated:
// a crafted entry may declare (or inflate to) far more than the file holds.
#pragma once

#include <c10/core/Storage.h>

#include <memory>
#include <string>
#include <vector>

namespace caffe2::serialize {
class PyTorchStreamReader;
}

namespace clip::io {

class ZipRecords {
 public:
  // Throws std::runtime_error (naming the file) when it is not such an archive.
  explicit ZipRecords(const std::string& path);
  ~ZipRecords();

  bool has(const std::string& name);
  bool has_prefix(const std::string& prefix);  // any record under prefix
  std::vector<std::string> names_with_prefix(const std::string& prefix);
  std::string text(const std::string& name);
  c10::Storage storage(const std::string& name);  // owns an aligned CPU copy

 private:
  // Charges a record's declared size to the archive's budget; throws when it would pass it.
  size_t claim(const std::string& name, size_t limit);

  std::string path_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
  uint64_t budget_ = 0;  // bytes the records read so far may still take
};

// Throws, naming the file, unless `path` is a regular file (or a link to one): a FIFO or a device
// would block or never end, a directory is not a weight file.
void require_regular_file(const std::string& path);

// True when the file starts like a zip archive ("PK\3\4").
bool looks_like_zip(const std::string& path);

// torch.save before 1.6 wrote a bare pickle stream, starting with PROTO.
bool looks_like_legacy_torch_save(const std::string& path);
extern const char* const kLegacyTorchSaveMessage;

}  // namespace clip::io
