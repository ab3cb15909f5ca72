#include "io/file_batch.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/experiments.h"

namespace clip::io {
namespace {

// Slice-by-8 tables: eight bytes per step, where no zlib is found (below).
struct CrcTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
};

const CrcTables& tables() {
  static const CrcTables tables;
  return tables;
}

}  // namespace

uint32_t crc32_portable(const uint8_t* data, size_t n, uint32_t crc) {
  const auto& t = tables().t;
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, data, 4);  // little-endian hosts (x86-64, arm64)
    std::memcpy(&hi, data + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^
        t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    data += 8;
    n -= 8;
  }
  while (n-- > 0) c = t[0][(c ^ *data++) & 0xFF] ^ (c >> 8);
  return ~c;
}

namespace {

using ZlibCrc32 = unsigned long (*)(unsigned long, const unsigned char*, unsigned int);

// zlib's own crc32, where the process has one (Node exports its zlib): several times faster than the
// tables above (carry-less multiplication). Taken only if it gives the check value of the standard
// test string, so a foreign symbol of that name costs speed, never correctness.
ZlibCrc32 process_zlib_crc32() {
  static const ZlibCrc32 found = [] {
    auto fn = reinterpret_cast<ZlibCrc32>(::dlsym(RTLD_DEFAULT, "crc32"));
    const unsigned char check[] = "123456789";
    return fn != nullptr && fn(0, check, 9) == 0xCBF43926ul ? fn : nullptr;
  }();
  return found;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc) {
  // Experiment portable-crc: the tables even where zlib is found (how the tests reach them).
  const ZlibCrc32 zlib = experiment_enabled("portable-crc") ? nullptr : process_zlib_crc32();
  if (zlib == nullptr) return crc32_portable(data, n, crc);
  unsigned long c = crc;
  constexpr size_t kChunk = size_t{1} << 30;  // zlib takes an unsigned int length
  while (n > 0) {
    const size_t step = n < kChunk ? n : kChunk;
    c = zlib(c, data, static_cast<unsigned int>(step));
    data += step;
    n -= step;
  }
  return static_cast<uint32_t>(c);
}

std::vector<FileStat> stat_files(const std::vector<std::string>& paths) {
  std::vector<FileStat> out(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    struct stat st {};
    if (::stat(paths[i].c_str(), &st) != 0) {
      out[i].error = errno;
      continue;
    }
    out[i].regular = S_ISREG(st.st_mode);
    out[i].size = static_cast<double>(st.st_size);
    out[i].mtime_sec = st.st_mtim.tv_sec;
    out[i].mtime_nsec = st.st_mtim.tv_nsec;
  }
  return out;
}

std::vector<BodyRead> read_files_into(const std::vector<std::string>& paths, size_t header_bytes, size_t body_bytes, uint8_t* headers,
                                      const std::vector<uint8_t*>& bodies) {
  std::vector<BodyRead> out(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    BodyRead& r = out[i];
    const int fd = ::open(paths[i].c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      r.error = errno;
      continue;
    }
    // Header, body and one byte more, which tells a longer file without asking for its size.
    uint8_t extra = 0;
    iovec parts[3] = {{headers + i * header_bytes, header_bytes}, {bodies[i], body_bytes}, {&extra, 1}};
    const size_t expected = header_bytes + body_bytes;
    size_t got = 0;
    while (got <= expected) {
      // The parts still to fill, from `got` on.
      iovec rest[3];
      int count = 0;
      size_t skip = got;
      for (const iovec& part : parts) {
        if (skip >= part.iov_len) {
          skip -= part.iov_len;
          continue;
        }
        rest[count++] = {static_cast<uint8_t*>(part.iov_base) + skip, part.iov_len - skip};
        skip = 0;
      }
      const ssize_t n = ::preadv(fd, rest, count, static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        r.error = errno;
        break;
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    if (r.error != 0) continue;
    if (got != expected) {
      r.wrong_size = true;
      continue;
    }
    r.crc = crc32(bodies[i], body_bytes);
  }
  return out;
}

}  // namespace clip::io
