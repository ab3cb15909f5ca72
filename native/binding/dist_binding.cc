// Process groups for JS: createProcessGroup(options) and the NativeGroup class, whose collectives the
// training loop uses between steps (evaluation counts, a barrier before rank 0 writes, the dataset
// check at start). A group is passed to createTrainer as its `group` option for the step's own.
#include <napi.h>

#include <cstring>
#include <memory>

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/dist_binding.h"
#include "binding/js_values.h"

namespace clip::binding {
namespace {

std::vector<double> DoublesArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (index >= info.Length() || !info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Float64Array");
  const auto array = info[index].As<Napi::Float64Array>();
  return std::vector<double>(array.Data(), array.Data() + array.ElementLength());
}

Napi::Value DoublesToJs(Napi::Env env, const at::Tensor& t) {
  const at::Tensor values = t.to(at::kDouble).contiguous();
  auto out = Napi::Float64Array::New(env, static_cast<size_t>(values.numel()));
  std::memcpy(out.Data(), values.const_data_ptr<double>(), sizeof(double) * static_cast<size_t>(values.numel()));
  return out;
}

at::Tensor DoublesTensor(const std::vector<double>& values) {
  return at::tensor(at::ArrayRef<double>(values), at::TensorOptions().dtype(at::kDouble));
}

}  // namespace

Napi::Object GroupWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeGroup",
                                    {
                                        InstanceMethod<&GroupWrap::Rank>("rank"),
                                        InstanceMethod<&GroupWrap::WorldSize>("worldSize"),
                                        InstanceMethod<&GroupWrap::Backend>("backend"),
                                        InstanceMethod<&GroupWrap::AllReduce>("allReduce"),
                                        InstanceMethod<&GroupWrap::AllGather>("allGather"),
                                        InstanceMethod<&GroupWrap::Barrier>("barrier"),
                                    });
  GetAddonData(env).group_constructor = Napi::Persistent(ctor);
  exports.Set("NativeGroup", ctor);
  return exports;
}

GroupWrap::GroupWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<GroupWrap>(info), group_(HandleFromConstructor<GroupPtr>(info, "NativeGroup cannot be constructed directly: use createProcessGroup()")) {}

GroupPtr GroupWrap::Unwrap(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetAddonData(value.Env()).group_constructor.Value()))
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a group from createProcessGroup()");
  return Napi::ObjectWrap<GroupWrap>::Unwrap(value.As<Napi::Object>())->group_;
}

Napi::Value GroupWrap::Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(group_->rank())); }
Napi::Value GroupWrap::WorldSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(group_->world_size())); }
Napi::Value GroupWrap::Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), group_->backend()); }

Napi::Value GroupWrap::AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const std::vector<double> values = DoublesArg(info, 0, "values");
    const std::string op = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "sum";
    if (op != "sum" && op != "max") throw Napi::TypeError::New(env, "allReduce: op must be 'sum' or 'max'");
    GroupPtr group = group_;
    return RunAsync<at::Tensor>(
        env,
        [group, values, op]() {
          std::vector<at::Tensor> t{DoublesTensor(values)};
          if (op == "sum") group->all_reduce_sum(t);
          else group->all_reduce_max(t);
          return t[0];
        },
        [](Napi::Env e, at::Tensor& t) { return DoublesToJs(e, t); });
  });
}

Napi::Value GroupWrap::AllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const std::vector<double> values = DoublesArg(info, 0, "values");
    GroupPtr group = group_;
    return RunAsync<at::Tensor>(
        env, [group, values]() { return group->all_gather(DoublesTensor(values)); }, [](Napi::Env e, at::Tensor& t) { return DoublesToJs(e, t); });
  });
}

Napi::Value GroupWrap::Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    GroupPtr group = group_;
    return RunAsync<bool>(
        env,
        [group]() {
          group->barrier();
          return true;
        },
        [](Napi::Env e, bool&) { return e.Undefined(); });
  });
}

namespace {

Napi::Value CreateProcessGroupJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    Napi::Object o = OptionsArg(info, 0);
    dist::GroupOptions options;
    options.backend = OptionalString(o, "backend").value_or(options.backend);
    options.rank = static_cast<int64_t>(OptionalNumber(o, "rank").value_or(0));
    options.world_size = static_cast<int64_t>(OptionalNumber(o, "worldSize").value_or(1));
    options.master_addr = OptionalString(o, "masterAddr").value_or(options.master_addr);
    options.master_port = static_cast<int64_t>(OptionalNumber(o, "masterPort").value_or(static_cast<double>(options.master_port)));
    options.host_store = OptionalBool(o, "hostStore").value_or(false);
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(OptionalNumber(o, "timeoutMs").value_or(300000)));
    options.device = OptionalString(o, "device").value_or(options.backend == "nccl" ? "cuda" : "cpu");
    (void)at::Device(options.device);  // throws on a malformed name here, not in a collective
    return RunAsync<GroupPtr>(
        env, [options]() { return dist::create_group(options); },
        [](Napi::Env e, GroupPtr& group) -> Napi::Value { return NewWrapped(e, GetAddonData(e).group_constructor, group); });
  });
}

Napi::Value BuiltBackendsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto names = dist::built_backends();
  Napi::Array out = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
  return out;
}

Napi::Value MissingBackendReasonJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dist::missing_backend_reason(StringArg(info, 0, "backend")));
}

}  // namespace

void RegisterDist(Napi::Env env, Napi::Object exports) {
  GroupWrap::Init(env, exports);
  exports.Set("createProcessGroup", Napi::Function::New(env, CreateProcessGroupJs, "createProcessGroup"));
  exports.Set("builtBackends", Napi::Function::New(env, BuiltBackendsJs, "builtBackends"));
  exports.Set("missingBackendReason", Napi::Function::New(env, MissingBackendReasonJs, "missingBackendReason"));
}

}  // namespace clip::binding
