// statFiles(paths), readFilesInto(paths, …, dest, slots), joinBytes(parts) and copyBytesInto(parts,
// dest, offsets): io/file_batch.h's batches of file operations for the data loader, and its batch
// assembly, each one request on the thread pool. Failures come back per file as errno values (the
// loader names the file and the error); only bad arguments throw.
#include <napi.h>

#include <cstring>
#include <sstream>

#include "binding/async.h"
#include "io/file_batch.h"

namespace clip::binding {
namespace {

std::vector<std::string> PathsArg(const Napi::CallbackInfo& info, const char* usage) {
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(info.Env(), usage);
  const auto array = info[0].As<Napi::Array>();
  std::vector<std::string> paths(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const Napi::Value v = array.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(info.Env(), std::string(usage) + ": path " + std::to_string(i) + " is not a string");
    paths[i] = v.As<Napi::String>().Utf8Value();
  }
  return paths;
}

// statFiles(paths) → {errors: Int32Array, regular: Uint8Array, sizes, mtimeSec, mtimeNsec: Float64Array}
Napi::Value StatFilesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto paths = PathsArg(info, "statFiles(paths): paths must be an array of strings");
    return RunAsync<std::vector<io::FileStat>>(
        env, [paths = std::move(paths)] { return io::stat_files(paths); },
        [](Napi::Env e, std::vector<io::FileStat>& stats) -> Napi::Value {
          const size_t n = stats.size();
          auto errors = Napi::Int32Array::New(e, n);
          auto regular = Napi::Uint8Array::New(e, n);
          auto sizes = Napi::Float64Array::New(e, n);
          auto sec = Napi::Float64Array::New(e, n);
          auto nsec = Napi::Float64Array::New(e, n);
          for (size_t i = 0; i < n; ++i) {
            errors[i] = stats[i].error;
            regular[i] = stats[i].regular ? 1 : 0;
            sizes[i] = stats[i].size;
            sec[i] = static_cast<double>(stats[i].mtime_sec);
            nsec[i] = static_cast<double>(stats[i].mtime_nsec);
          }
          auto out = Napi::Object::New(e);
          out.Set("errors", errors);
          out.Set("regular", regular);
          out.Set("sizes", sizes);
          out.Set("mtimeSec", sec);
          out.Set("mtimeNsec", nsec);
          return out;
        });
  });
}

// readFilesInto(paths, headerBytes, bodyBytes, dest: Uint8Array, slots: Int32Array) → {errors: Int32Array
// (errno; -1: not headerBytes + bodyBytes long), crcs: Uint32Array (of each body), headers: Buffer (each
// file's header, one after another)}: file i's body lands in dest at slots[i] · bodyBytes.
Napi::Value ReadFilesIntoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const char* usage =
        "readFilesInto(paths, headerBytes, bodyBytes, dest, slots): paths must be strings, the sizes byte counts, dest a Uint8Array, slots an "
        "Int32Array of body positions in dest, one per path";
    auto paths = PathsArg(info, usage);
    if (info.Length() < 5 || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsTypedArray() || !info[4].IsTypedArray()) {
      throw Napi::TypeError::New(env, usage);
    }
    const double header_bytes = info[1].As<Napi::Number>().DoubleValue(), body_bytes = info[2].As<Napi::Number>().DoubleValue();
    if (!(header_bytes >= 0 && header_bytes <= 1 << 20) || !(body_bytes >= 0 && body_bytes <= 1 << 30)) throw Napi::RangeError::New(env, usage);
    const auto dest = info[3].As<Napi::TypedArray>();
    const auto slots_value = info[4].As<Napi::TypedArray>();
    if (dest.TypedArrayType() != napi_uint8_array || slots_value.TypedArrayType() != napi_int32_array) throw Napi::TypeError::New(env, usage);
    auto bytes = dest.As<Napi::Uint8Array>();
    const auto slots = slots_value.As<Napi::Int32Array>();
    if (slots.ElementLength() != paths.size()) {
      throw Napi::RangeError::New(env, std::string(usage) + ": " + std::to_string(paths.size()) + " paths, " + std::to_string(slots.ElementLength()) + " slots");
    }
    const size_t body = static_cast<size_t>(body_bytes), header = static_cast<size_t>(header_bytes);
    std::vector<uint8_t*> bodies(paths.size());
    for (size_t i = 0; i < paths.size(); ++i) {
      const int32_t slot = slots[i];
      if (slot < 0 || (static_cast<size_t>(slot) + 1) * body > bytes.ByteLength()) {
        throw Napi::RangeError::New(env, std::string(usage) + ": slot " + std::to_string(slot) + " of path " + std::to_string(i) + " is outside dest");
      }
      bodies[i] = bytes.Data() + static_cast<size_t>(slot) * body;
    }
    struct Reads {
      std::vector<io::BodyRead> files;
      std::unique_ptr<uint8_t[]> headers;
    };
    auto headers = std::make_shared<std::unique_ptr<uint8_t[]>>(new uint8_t[paths.size() * header + 1]);
    return RunAsync<Reads>(
        env,
        [paths = std::move(paths), header, body, bodies = std::move(bodies), headers] {
          Reads r;
          r.files = io::read_files_into(paths, header, body, headers->get(), bodies);
          r.headers = std::move(*headers);
          return r;
        },
        [header](Napi::Env e, Reads& reads) -> Napi::Value {
          const size_t n = reads.files.size();
          auto errors = Napi::Int32Array::New(e, n);
          auto crcs = Napi::Uint32Array::New(e, n);
          for (size_t i = 0; i < n; ++i) {
            errors[i] = reads.files[i].wrong_size ? -1 : reads.files[i].error;
            crcs[i] = reads.files[i].crc;
          }
          auto out = Napi::Object::New(e);
          out.Set("errors", errors);
          out.Set("crcs", crcs);
          out.Set("headers", Napi::Buffer<uint8_t>::Copy(e, reads.headers.get(), n * header));
          return out;
        },
        {dest});  // dest stays alive (and in place) until the reads are done
  });
}

// joinBytes(parts: Uint8Array[]) → Buffer: the parts one after another. A training batch is 256 crops
// of 150 KB: copied on the main thread into fresh memory, its page faults included, it held the main
// thread (docs/performance.md); here a pool thread allocates and copies.
Napi::Value JoinBytesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const char* usage = "joinBytes(parts): parts must be an array of Uint8Arrays";
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, usage);
    const auto array = info[0].As<Napi::Array>();
    struct Part {
      const uint8_t* data;
      size_t length;
    };
    std::vector<Part> parts(array.Length());
    std::vector<Napi::Value> keep_alive;
    size_t total = 0;
    for (uint32_t i = 0; i < array.Length(); ++i) {
      const Napi::Value v = array.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, usage);
      const auto bytes = v.As<Napi::Uint8Array>();
      parts[i] = {bytes.Data(), bytes.ByteLength()};
      total += bytes.ByteLength();
      keep_alive.push_back(v);  // the parts stay alive (and in place) until the copy is done
    }
    using Joined = std::pair<std::unique_ptr<uint8_t[]>, size_t>;
    return RunAsync<Joined>(
        env,
        [parts = std::move(parts), total] {
          std::unique_ptr<uint8_t[]> out(new uint8_t[total > 0 ? total : 1]);
          size_t at = 0;
          for (const Part& p : parts) {
            std::memcpy(out.get() + at, p.data, p.length);
            at += p.length;
          }
          return Joined(std::move(out), total);
        },
        [](Napi::Env e, Joined& joined) -> Napi::Value {
          return Napi::Buffer<uint8_t>::New(e, joined.first.release(), joined.second, [](Napi::Env, uint8_t* p) { delete[] p; });
        },
        std::move(keep_alive));
  });
}

// copyBytesInto(parts: Uint8Array[], dest: Uint8Array, offsets: Float64Array) → Promise<void>: part i
// copied into dest at byte offsets[i]. The loader's crops held in memory land in a batch's buffer this
// way: a pool thread takes the copy and the page faults of the fresh buffer, not the main thread.
Napi::Value CopyBytesIntoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const char* usage =
        "copyBytesInto(parts, dest, offsets): parts must be an array of Uint8Arrays, dest a Uint8Array, offsets a Float64Array of byte "
        "offsets in dest, one per part";
    if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsTypedArray() || !info[2].IsTypedArray()) {
      throw Napi::TypeError::New(env, usage);
    }
    const auto array = info[0].As<Napi::Array>();
    const auto dest_value = info[1].As<Napi::TypedArray>();
    const auto offsets_value = info[2].As<Napi::TypedArray>();
    if (dest_value.TypedArrayType() != napi_uint8_array || offsets_value.TypedArrayType() != napi_float64_array) {
      throw Napi::TypeError::New(env, usage);
    }
    auto dest = dest_value.As<Napi::Uint8Array>();
    const auto offsets = offsets_value.As<Napi::Float64Array>();
    if (offsets.ElementLength() != array.Length()) {
      throw Napi::RangeError::New(env, std::string(usage) + ": " + std::to_string(array.Length()) + " parts, " +
                                           std::to_string(offsets.ElementLength()) + " offsets");
    }
    struct Copy {
      const uint8_t* from;
      uint8_t* to;
      size_t length;
    };
    std::vector<Copy> copies(array.Length());
    // dest and the parts stay alive (and in place) until the copy is done.
    std::vector<Napi::Value> keep_alive{info[1]};
    for (uint32_t i = 0; i < array.Length(); ++i) {
      const Napi::Value v = array.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        throw Napi::TypeError::New(env, std::string(usage) + ": part " + std::to_string(i) + " is not a Uint8Array");
      }
      const auto part = v.As<Napi::Uint8Array>();
      const double offset = offsets[i];
      const bool whole = offset >= 0 && offset <= 9007199254740992.0 && offset == static_cast<double>(static_cast<size_t>(offset));
      if (!whole || static_cast<size_t>(offset) + part.ByteLength() > dest.ByteLength()) {
        std::ostringstream what;
        what << usage << ": part " << i << " (" << part.ByteLength() << " bytes at " << offset << ") does not fit in dest (" << dest.ByteLength()
             << " bytes)";
        throw Napi::RangeError::New(env, what.str());
      }
      copies[i] = {part.Data(), dest.Data() + static_cast<size_t>(offset), part.ByteLength()};
      keep_alive.push_back(v);
    }
    return RunAsync<bool>(
        env,
        [copies = std::move(copies)] {
          for (const Copy& c : copies) std::memmove(c.to, c.from, c.length);
          return true;
        },
        [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); }, std::move(keep_alive));
  });
}

}  // namespace

void RegisterFiles(Napi::Env env, Napi::Object exports) {
  exports.Set("statFiles", Napi::Function::New(env, StatFilesJs, "statFiles"));
  exports.Set("readFilesInto", Napi::Function::New(env, ReadFilesIntoJs, "readFilesInto"));
  exports.Set("joinBytes", Napi::Function::New(env, JoinBytesJs, "joinBytes"));
  exports.Set("copyBytesInto", Napi::Function::New(env, CopyBytesIntoJs, "copyBytesInto"));
}

}  // namespace clip::binding
