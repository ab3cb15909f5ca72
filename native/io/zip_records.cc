#include "zip_records.h"

#include <caffe2/serialize/inline_container.h>

#include <fstream>
#include <stdexcept>

namespace clip::io {
namespace {

std::string first_bytes(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

}  // namespace

bool looks_like_zip(const std::string& path) { return first_bytes(path, 4) == std::string("PK\3\4", 4); }

bool looks_like_legacy_torch_save(const std::string& path) { return first_bytes(path, 1) == "\x80"; }

const char* const kLegacyTorchSaveMessage =
    "legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a newer torch";

ZipRecords::ZipRecords(const std::string& path) : path_(path) {
  if (!looks_like_zip(path)) {
    if (looks_like_legacy_torch_save(path)) throw std::runtime_error(kLegacyTorchSaveMessage);
    throw std::runtime_error("not a PyTorch zip archive");
  }
  try {
    reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(std::string("unreadable PyTorch zip archive: ") + e.what_without_backtrace());
  }
}

ZipRecords::~ZipRecords() = default;

bool ZipRecords::has(const std::string& name) { return reader_->hasRecord(name); }

bool ZipRecords::has_prefix(const std::string& prefix) {
  for (const auto& name : reader_->getAllRecords())
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string ZipRecords::text(const std::string& name) {
  if (!has(name)) throw std::runtime_error("missing record '" + name + "'");
  auto [data, size] = reader_->getRecord(name);
  return std::string(static_cast<const char*>(data.get()), size);
}

c10::Storage ZipRecords::storage(const std::string& name) {
  if (!has(name)) throw std::runtime_error("missing record '" + name + "'");
  auto [data, size] = reader_->getRecord(name);
  return c10::Storage(c10::Storage::use_byte_size_t(), size, std::move(data), /*allocator=*/nullptr,
                      /*resizable=*/false);
}

}  // namespace clip::io
