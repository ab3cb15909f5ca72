// The addon's entry point: registers each binding group. Bindings only convert values, own object
// lifetimes and schedule work; the model, training and I/O live in plain C++ beside them.
#include <napi.h>

namespace clip::binding {
void RegisterRuntime(Napi::Env env, Napi::Object exports);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  clip::binding::RegisterRuntime(env, exports);
  return exports;
}

NODE_API_MODULE(clip_native, Init)
