#include "zip_records.h"

#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace clip::io {
namespace {

// torch.save and torch.jit.save store records uncompressed, so what they hold adds up to the file's
// size. A re-zipped archive may be deflated; weights compress little, so eight times the file is
// generous for it and still stops a zip bomb long before memory runs out.
constexpr uint64_t kInflationFactor = 8;
constexpr uint64_t kInflationSlack = 64ull << 20;
// A pickle (data.pkl, constants.pkl) or a code record holds structure, never tensor bytes.
constexpr size_t kMaxTextRecord = 256ull << 20;

std::string first_bytes(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

}  // namespace

void require_regular_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error) throw std::runtime_error(path + ": cannot open (" + error.message() + ")");
  switch (status.type()) {
    case fs::file_type::regular: return;
    case fs::file_type::directory: throw std::runtime_error(path + ": is a directory, not a weight file");
    case fs::file_type::fifo: throw std::runtime_error(path + ": is a FIFO (named pipe), not a weight file; refused without reading it");
    case fs::file_type::character:
    case fs::file_type::block: throw std::runtime_error(path + ": is a device, not a weight file; refused without reading it");
    case fs::file_type::socket: throw std::runtime_error(path + ": is a socket, not a weight file");
    default: throw std::runtime_error(path + ": is not a regular file");
  }
}

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
  budget_ = std::filesystem::file_size(path) * kInflationFactor + kInflationSlack;
}

ZipRecords::~ZipRecords() = default;

bool ZipRecords::has(const std::string& name) { return reader_->hasRecord(name); }

bool ZipRecords::has_prefix(const std::string& prefix) {
  for (const auto& name : reader_->getAllRecords())
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

std::vector<std::string> ZipRecords::names_with_prefix(const std::string& prefix) {
  std::vector<std::string> names;
  for (auto& name : reader_->getAllRecords())
    if (name.rfind(prefix, 0) == 0) names.push_back(std::move(name));
  return names;
}

size_t ZipRecords::claim(const std::string& name, size_t limit) {
  if (!has(name)) throw std::runtime_error("missing record '" + name + "'");
  const size_t size = reader_->getRecordSize(name);
  if (size > limit)
    throw std::runtime_error("record '" + name + "' declares " + std::to_string(size) + " bytes, more than the " +
                             std::to_string(limit) + " such a record may hold; refused");
  if (size > budget_)
    throw std::runtime_error("record '" + name + "' declares " + std::to_string(size) +
                             " bytes: with the records before it, more than this archive's size can hold even "
                             "deflated (a zip bomb?); refused");
  budget_ -= size;
  return size;
}

std::string ZipRecords::text(const std::string& name) {
  claim(name, kMaxTextRecord);
  // miniz inflates into a buffer of the declared size and fails if the data would run past it.
  auto [data, size] = reader_->getRecord(name);
  return std::string(static_cast<const char*>(data.get()), size);
}

c10::Storage ZipRecords::storage(const std::string& name) {
  claim(name, SIZE_MAX);
  auto [data, size] = reader_->getRecord(name);
  return c10::Storage(c10::Storage::use_byte_size_t(), size, std::move(data), /*allocator=*/nullptr,
                      /*resizable=*/false);
}

}  // namespace clip::io
