// The addon's entry point: registers each binding group. Bindings only convert values, own object
// lifetimes and schedule work; the model, training and I/O live in plain C++ beside them.
#include <napi.h>

#include "binding/addon_data.h"

namespace clip::binding {
void RegisterRuntime(Napi::Env env, Napi::Object exports);
void RegisterModel(Napi::Env env, Napi::Object exports);
void RegisterTrainer(Napi::Env env, Napi::Object exports);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new clip::binding::AddonData());
  clip::binding::RegisterRuntime(env, exports);
  clip::binding::RegisterModel(env, exports);
  clip::binding::RegisterTrainer(env, exports);
  return exports;
}

NODE_API_MODULE(clip_native, Init)
