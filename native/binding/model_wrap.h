// The JS class `NativeModel`: a handle to a native CLIP model.
#pragma once
#include <napi.h>

#include "binding/model_handle.h"

namespace clip::binding {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports);
  static Napi::Object NewInstance(Napi::Env env, const ModelPtr& handle);
  /** The handle behind a JS model argument; throws a TypeError naming `what` otherwise. */
  static ModelPtr Unwrap(const Napi::Value& value, const char* what);
  using Napi::ObjectWrap<ModelWrap>::Unwrap;

  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  const ModelPtr& Handle(Napi::Env env) const;
  Napi::Value Config(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value EncodeImage(const Napi::CallbackInfo& info);
  Napi::Value EncodeText(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value SetTraining(const Napi::CallbackInfo& info);
  Napi::Value IsTraining(const Napi::CallbackInfo& info);
  Napi::Value CopyWeights(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value ParameterCount(const Napi::CallbackInfo& info);
  Napi::Value LogitScale(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  ModelPtr handle_;
};

}  // namespace clip::binding
