// Per-environment constructors, so native code can create JS wrapper objects (a Model from a load).
#pragma once
#include <napi.h>

namespace clip::binding {

struct AddonData {
  Napi::FunctionReference model_constructor;
  Napi::FunctionReference trainer_constructor;
};

inline AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace clip::binding
