// The JS class `NativeGroup`: a handle to a c10d process group (native/distributed/process_group.h).
#pragma once
#include <napi.h>

#include <memory>

#include "distributed/process_group.h"

namespace clip::binding {

using GroupPtr = std::shared_ptr<dist::Group>;

class GroupWrap : public Napi::ObjectWrap<GroupWrap> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports);
  /** The group behind a JS argument; throws a TypeError naming `what` otherwise. */
  static GroupPtr Unwrap(const Napi::Value& value, const char* what);
  using Napi::ObjectWrap<GroupWrap>::Unwrap;

  explicit GroupWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Rank(const Napi::CallbackInfo& info);
  Napi::Value WorldSize(const Napi::CallbackInfo& info);
  Napi::Value Backend(const Napi::CallbackInfo& info);
  Napi::Value AllReduce(const Napi::CallbackInfo& info);
  Napi::Value AllGather(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);

  GroupPtr group_;
};

}  // namespace clip::binding
