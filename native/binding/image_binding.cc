// resampleBicubic(src, width, height, channels, outWidth, outHeight, window, alphaLast) → Promise<Buffer>:
// image/resample.h's Pillow-exact bicubic on decoded pixels, on the thread pool so that a decode
// never holds the event loop. Bad arguments throw; a failure in the work rejects with a JS Error.
#include <napi.h>

#include <string>

#include "binding/async.h"
#include "image/resample.h"

namespace clip::binding {
namespace {

int IntArg(const Napi::Value& v, const char* name, const char* usage) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(usage) + ": " + name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 1 << 30) || d != static_cast<double>(static_cast<int>(d)))
    throw Napi::RangeError::New(v.Env(), std::string(usage) + ": " + name + " must be a non-negative integer");
  return static_cast<int>(d);
}

Napi::Value ResampleBicubicJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const char* usage = "resampleBicubic(src, width, height, channels, outWidth, outHeight, window, alphaLast)";
    if (info.Length() < 8 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        !info[6].IsObject() || !info[7].IsBoolean())
      throw Napi::TypeError::New(env, std::string(usage) + ": src must be a Uint8Array, window an object, alphaLast a boolean");
    const auto bytes = info[0].As<Napi::Uint8Array>();
    image::Pixels src{bytes.Data(), IntArg(info[1], "width", usage), IntArg(info[2], "height", usage), IntArg(info[3], "channels", usage)};
    const int out_width = IntArg(info[4], "outWidth", usage);
    const int out_height = IntArg(info[5], "outHeight", usage);
    const auto w = info[6].As<Napi::Object>();
    const image::Window win{IntArg(w.Get("left"), "window.left", usage), IntArg(w.Get("top"), "window.top", usage),
                            IntArg(w.Get("width"), "window.width", usage), IntArg(w.Get("height"), "window.height", usage)};
    const bool alpha_last = info[7].As<Napi::Boolean>().Value();
    if (static_cast<double>(bytes.ByteLength()) < static_cast<double>(src.width) * src.height * src.channels)
      throw Napi::RangeError::New(env, std::string(usage) + ": src holds fewer than width × height × channels bytes");
    return RunAsync<std::vector<uint8_t>>(
        env, [src, out_width, out_height, win, alpha_last] { return image::resample_bicubic(src, out_width, out_height, win, alpha_last); },
        [](Napi::Env e, std::vector<uint8_t>& out) -> Napi::Value { return Napi::Buffer<uint8_t>::Copy(e, out.data(), out.size()); },
        {info[0]});  // the source stays alive (and in place) until the work is done
  });
}

}  // namespace

void RegisterImage(Napi::Env env, Napi::Object exports) {
  exports.Set("resampleBicubic", Napi::Function::New(env, ResampleBicubicJs, "resampleBicubic"));
}

}  // namespace clip::binding
