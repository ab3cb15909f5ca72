// Many small file operations in one call, for the data loader. Reading a cached crop took the event
// loop four file requests (stat, open, read, close), each handed to a pool thread it had to wake, plus
// a CRC over 150 KB: on a 2-core machine the main thread, not the disks or the pool, capped the warm
// loader (docs/performance.md). A batch of stats or reads here is one request, and the checksum runs on
// the pool thread too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clip::io {

struct FileStat {
  int error = 0;  // errno of a failed stat, else 0
  bool regular = false;
  double size = 0;
  int64_t mtime_sec = 0, mtime_nsec = 0;
};

std::vector<FileStat> stat_files(const std::vector<std::string>& paths);

struct BodyRead {
  int error = 0;            // errno of a failed open or read, else 0
  bool wrong_size = false;  // the file is not header + body bytes long (its slots then hold garbage)
  uint32_t crc = 0;         // CRC-32 (zlib's) of the body
};

/**
 * Reads files of exactly header_bytes + body_bytes: file i's header into headers + i · header_bytes,
 * its body into bodies[i], straight from the page cache into the caller's memory (a training batch):
 * no allocation per file, whose page faults and unmapping were most of a warm loader's pool time.
 */
std::vector<BodyRead> read_files_into(const std::vector<std::string>& paths, size_t header_bytes, size_t body_bytes, uint8_t* headers,
                                      const std::vector<uint8_t*>& bodies);

/** zlib's crc32(crc, data, n): the IEEE polynomial, reflected, with its pre- and post-inversion. Runs
 * the process's zlib where it has one, else crc32_portable. */
uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);
uint32_t crc32_portable(const uint8_t* data, size_t n, uint32_t crc = 0);

}  // namespace clip::io
