// Per-environment constructors, so native code can create JS wrapper objects (a Model from a load).
#pragma once
#include <napi.h>

namespace clip::binding {

struct AddonData {
  Napi::FunctionReference model_constructor;
  Napi::FunctionReference trainer_constructor;
  Napi::FunctionReference group_constructor;
};

inline AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

/** A JS wrapper object owning a copy of `handle` (a shared_ptr), made through its class constructor. */
template <typename Handle>
Napi::Object NewWrapped(Napi::Env env, Napi::FunctionReference& constructor, const Handle& handle) {
  auto external = Napi::External<Handle>::New(env, new Handle(handle), [](Napi::Env, Handle* h) { delete h; });
  return constructor.New({external});
}

/** The handle NewWrapped passed to a wrapper's constructor; anything else is a direct `new`, refused. */
template <typename Handle>
Handle HandleFromConstructor(const Napi::CallbackInfo& info, const char* refusal) {
  if (info.Length() != 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), refusal);
  return *info[0].As<Napi::External<Handle>>().Data();
}

}  // namespace clip::binding
