// statFiles(paths), readFiles(paths, length, crcFrom) and joinBytes(parts): io/file_batch.h's batches
// of file operations for the data loader, and its batch assembly, each one request on the thread pool. Failures come back per file as errno
// values (the loader names the file and the error); only bad arguments throw.
#include <napi.h>

#include <cstring>

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

// readFiles(paths, length, crcFrom) → {errors: Int32Array (errno; -1: not `length` bytes long),
// crcs: Uint32Array (of bytes [crcFrom, length)), data: Array<Buffer | null>}
Napi::Value ReadFilesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const char* usage = "readFiles(paths, length, crcFrom): paths must be strings, length and crcFrom byte counts";
    auto paths = PathsArg(info, usage);
    if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber()) throw Napi::TypeError::New(env, usage);
    const double length = info[1].As<Napi::Number>().DoubleValue(), crc_from = info[2].As<Napi::Number>().DoubleValue();
    if (!(length >= 0 && length <= 1 << 30) || !(crc_from >= 0 && crc_from <= length)) throw Napi::RangeError::New(env, usage);
    return RunAsync<std::vector<io::FileRead>>(
        env,
        [paths = std::move(paths), length = static_cast<size_t>(length), crc_from = static_cast<size_t>(crc_from)] {
          return io::read_files(paths, length, crc_from);
        },
        [length = static_cast<size_t>(length)](Napi::Env e, std::vector<io::FileRead>& reads) -> Napi::Value {
          const size_t n = reads.size();
          auto errors = Napi::Int32Array::New(e, n);
          auto crcs = Napi::Uint32Array::New(e, n);
          auto data = Napi::Array::New(e, n);
          for (size_t i = 0; i < n; ++i) {
            errors[i] = reads[i].wrong_size ? -1 : reads[i].error;
            crcs[i] = reads[i].crc;
            if (!reads[i].data) {
              data.Set(static_cast<uint32_t>(i), e.Null());
              continue;
            }
            // The bytes move to JS without a copy; the Buffer's finaliser frees them.
            uint8_t* bytes = reads[i].data.release();
            data.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::New(e, bytes, length, [](Napi::Env, uint8_t* p) { delete[] p; }));
          }
          auto out = Napi::Object::New(e);
          out.Set("errors", errors);
          out.Set("crcs", crcs);
          out.Set("data", data);
          return out;
        });
  });
}

// joinBytes(parts: Uint8Array[]) → Buffer: the parts one after another. A training batch is 256 crops
// of 150 KB: copied on the main thread into fresh memory (its page faults included) it cost about
// 50 µs per image there; here a pool thread allocates and copies.
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

}  // namespace

void RegisterFiles(Napi::Env env, Napi::Object exports) {
  exports.Set("statFiles", Napi::Function::New(env, StatFilesJs, "statFiles"));
  exports.Set("readFiles", Napi::Function::New(env, ReadFilesJs, "readFiles"));
  exports.Set("joinBytes", Napi::Function::New(env, JoinBytesJs, "joinBytes"));
}

}  // namespace clip::binding
