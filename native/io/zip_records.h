// The records of a PyTorch zip archive (torch.save / torch.jit.save), by
// name relative to its single top folder, whatever that folder is called.
#pragma once

#include <c10/core/Storage.h>

#include <memory>
#include <string>

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
  std::string text(const std::string& name);
  c10::Storage storage(const std::string& name);  // owns an aligned CPU copy

 private:
  std::string path_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
};

// True when the file starts like a zip archive ("PK\3\4").
bool looks_like_zip(const std::string& path);

// torch.save before 1.6 wrote a bare pickle stream, starting with PROTO.
bool looks_like_legacy_torch_save(const std::string& path);
extern const char* const kLegacyTorchSaveMessage;

}  // namespace clip::io
