// safetensors: u64 LE header length N, N bytes of JSON, then raw LE bytes.
#include "weights.h"

#include "atomic_file.h"
#include "dtype_names.h"
#include "json_min.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(std::endian::native == std::endian::little,
              "safetensors and torch.save data are little-endian; this host is not");

namespace clip::io {
namespace {

// Bigger headers are not plausible (official safetensors caps them at 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw std::runtime_error(path + ": cannot stat: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw std::runtime_error(path + ": not a regular file");
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~ReadOnlyFile() { ::close(fd_); }
  uint64_t size() const { return size_; }

  void read_exactly(uint64_t offset, void* dst, uint64_t n, const std::string& what) const {
    auto out = static_cast<char*>(dst);
    while (n > 0) {
      ssize_t got = ::pread(fd_, out, std::min<uint64_t>(n, 1u << 30), static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw std::runtime_error(path_ + ": reading " + what + " failed: " + std::strerror(errno));
      if (got == 0) throw std::runtime_error(path_ + ": file is truncated while reading " + what);
      out += got;
      offset += static_cast<uint64_t>(got);
      n -= static_cast<uint64_t>(got);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

struct HeaderEntry {
  std::string name;
  c10::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

uint64_t checked_multiply(uint64_t a, uint64_t b, const std::string& context) {
  if (a != 0 && b > UINT64_MAX / a) throw std::runtime_error(context + ": shape is too large");
  return a * b;
}

HeaderEntry parse_entry(const std::string& where, const std::string& name, const json::Value& v) {
  if (!v.is_object()) throw std::runtime_error(where + ": entry is not an object");
  const json::Value *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (const auto& [field, value] : v.members) {
    if (field == "dtype") dtype = &value;
    else if (field == "shape") shape = &value;
    else if (field == "data_offsets") offsets = &value;
  }
  if (!dtype || !dtype->is_string()) throw std::runtime_error(where + ": missing or non-string \"dtype\"");
  if (!shape || !shape->is_array()) throw std::runtime_error(where + ": missing or non-array \"shape\"");
  if (!offsets || !offsets->is_array() || offsets->items.size() != 2)
    throw std::runtime_error(where + ": \"data_offsets\" must be [begin, end]");

  HeaderEntry e;
  e.name = name;
  auto type = dtype_from_safetensors(dtype->text);
  if (!type) throw std::runtime_error(where + ": unsupported dtype \"" + dtype->text + "\"");
  e.dtype = *type;
  uint64_t numel = 1;
  try {
    for (const auto& d : shape->items) {
      uint64_t size = d.as_uint64();
      if (size > static_cast<uint64_t>(INT64_MAX)) throw std::runtime_error("dimension too large");
      e.shape.push_back(static_cast<int64_t>(size));
      numel = checked_multiply(numel, size, where);
    }
    e.begin = offsets->items[0].as_uint64();
    e.end = offsets->items[1].as_uint64();
  } catch (const std::runtime_error& err) {
    throw std::runtime_error(where + ": " + err.what());
  }
  if (e.end < e.begin) throw std::runtime_error(where + ": data_offsets end is before begin");
  uint64_t bytes = checked_multiply(numel, c10::elementSize(e.dtype), where);
  if (e.end - e.begin != bytes)
    throw std::runtime_error(where + ": data_offsets span " + std::to_string(e.end - e.begin) +
                             " bytes but shape and dtype need " + std::to_string(bytes));
  return e;
}

}  // namespace

TensorFile read_safetensors(const std::string& path) {
  ReadOnlyFile file(path);
  if (file.size() < 8) throw std::runtime_error(path + ": too short for a safetensors file");
  uint64_t header_len = 0;
  file.read_exactly(0, &header_len, 8, "the header length");
  if (header_len > kMaxHeaderBytes || header_len > file.size() - 8)
    throw std::runtime_error(path + ": header length " + std::to_string(header_len) +
                             " exceeds the file (not safetensors, or truncated)");
  std::string header(header_len, '\0');
  file.read_exactly(8, header.data(), header_len, "the header");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file.size() - data_start;

  json::Value root;
  try {
    root = json::parse(header);
  } catch (const std::runtime_error& err) {
    throw std::runtime_error(path + ": safetensors header: " + err.what());
  }
  if (!root.is_object()) throw std::runtime_error(path + ": safetensors header is not a JSON object");

  TensorFile result;
  result.format = "safetensors";
  std::vector<HeaderEntry> entries;
  for (const auto& [key, value] : root.members) {
    std::string where = path + ": \"" + key + "\"";
    if (key == "__metadata__") {
      if (value.kind == json::Value::Kind::Null) continue;
      if (!value.is_object()) throw std::runtime_error(where + " is not an object");
      for (const auto& [mk, mv] : value.members) {
        if (!mv.is_string()) throw std::runtime_error(where + ": value of \"" + mk + "\" is not a string");
        result.metadata[mk] = mv.text;
      }
      continue;
    }
    HeaderEntry e = parse_entry(where, key, value);
    if (e.end > data_size)
      throw std::runtime_error(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                               "] run past the end of the data (" + std::to_string(data_size) +
                               " bytes; truncated file?)");
    entries.push_back(std::move(e));
  }

  std::vector<const HeaderEntry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      throw std::runtime_error(path + ": \"" + by_offset[i]->name + "\" overlaps \"" + by_offset[i - 1]->name + "\"");

  // One pread per tensor straight into its own storage: no second copy of
  // the file in memory, and every tensor owns an aligned buffer.
  for (const auto& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype).device(at::kCPU));
    file.read_exactly(data_start + e.begin, t.data_ptr(), e.end - e.begin, "\"" + e.name + "\"");
    result.tensors.push_back({e.name, std::move(t)});
  }
  return result;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  struct Item {
    const std::string* name;
    at::Tensor cpu;
    std::string dtype;
  };
  std::vector<Item> items;
  std::set<std::string> seen;
  for (const auto& nt : tensors) {
    std::string where = path + ": \"" + nt.name + "\"";
    if (nt.name.empty() || nt.name == "__metadata__") throw std::runtime_error(where + ": reserved or empty name");
    if (!seen.insert(nt.name).second) throw std::runtime_error(where + ": duplicate name");
    if (!nt.tensor.defined()) throw std::runtime_error(where + ": undefined tensor");
    auto dtype = safetensors_dtype_name(nt.tensor.scalar_type());
    if (!dtype)
      throw std::runtime_error(where + ": dtype " + std::string(c10::toString(nt.tensor.scalar_type())) +
                               " cannot be written to safetensors");
    items.push_back({&nt.name, nt.tensor.detach().to(at::kCPU).contiguous(), *dtype});
  }
  // Larger elements first keeps every tensor aligned to its element size.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.cpu.element_size() != b.cpu.element_size()) return a.cpu.element_size() > b.cpu.element_size();
    return *a.name < *b.name;
  });

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ",";
      first = false;
      header += json::quote(k) + ":" + json::quote(v);
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const auto& item : items) {
    if (header.size() > 1) header += ",";
    uint64_t bytes = item.cpu.nbytes();
    header += json::quote(*item.name) + ":{\"dtype\":\"" + item.dtype + "\",\"shape\":[";
    for (int64_t d = 0; d < item.cpu.dim(); ++d) {
      if (d) header += ",";
      header += std::to_string(item.cpu.size(d));
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  header.append((8 - (8 + header.size()) % 8) % 8, ' ');

  AtomicFile out(path);
  uint64_t header_len = header.size();
  out.write(&header_len, 8);
  out.write(header.data(), header.size());
  for (const auto& item : items) out.write(item.cpu.const_data_ptr(), item.cpu.nbytes());
  out.commit();
}

}  // namespace clip::io
