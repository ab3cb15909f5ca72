// The addon's entry point: registers each binding group. Bindings only convert values, own object
// lifetimes and schedule work; the model, training and I/O live in plain C++ beside them.
#include <ATen/Context.h>
#include <napi.h>

#include "binding/addon_data.h"

namespace clip::binding {
void RegisterRuntime(Napi::Env env, Napi::Object exports);
void RegisterModel(Napi::Env env, Napi::Object exports);
void RegisterTrainer(Napi::Env env, Napi::Object exports);
void RegisterFiles(Napi::Env env, Napi::Object exports);
void RegisterDist(Napi::Env env, Napi::Object exports);
void RegisterImage(Napi::Env env, Napi::Object exports);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // 'fp32' means fp32: cuDNN would otherwise run fp32 convolutions in TF32 (10-bit mantissa), off
  // the reference by ~1e-3. The fast modes are bf16/fp16 autocast, which TF32 does not affect.
  at::globalContext().setAllowTF32CuDNN(false);
  env.SetInstanceData(new clip::binding::AddonData());
  clip::binding::RegisterRuntime(env, exports);
  clip::binding::RegisterModel(env, exports);
  clip::binding::RegisterTrainer(env, exports);
  clip::binding::RegisterFiles(env, exports);
  clip::binding::RegisterDist(env, exports);
  clip::binding::RegisterImage(env, exports);
  return exports;
}

NODE_API_MODULE(clip_native, Init)
