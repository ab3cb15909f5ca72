// Small readers for option objects, with errors that name the option.
#pragma once
#include <napi.h>

#include <map>
#include <optional>
#include <vector>
#include <string>

namespace clip::binding {

inline Napi::Object OptionsArg(const Napi::CallbackInfo& info, size_t index) {
  if (index < info.Length() && info[index].IsObject()) return info[index].As<Napi::Object>();
  return Napi::Object::New(info.Env());
}

inline std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (index >= info.Length() || !info[index].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[index].As<Napi::String>().Utf8Value();
}

/** A string, or a non-empty array of strings (several files of one thing). */
inline std::vector<std::string> StringsArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (index < info.Length() && info[index].IsString()) return {info[index].As<Napi::String>().Utf8Value()};
  if (index >= info.Length() || !info[index].IsArray() || info[index].As<Napi::Array>().Length() == 0)
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string or a non-empty array of strings");
  const auto array = info[index].As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const Napi::Value v = array.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + "[" + std::to_string(i) + "] must be a string");
    out.push_back(v.As<Napi::String>().Utf8Value());
  }
  return out;
}

inline std::optional<std::string> OptionalString(const Napi::Object& options, const char* key) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsString()) throw Napi::TypeError::New(options.Env(), std::string("option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline std::optional<double> OptionalNumber(const Napi::Object& options, const char* key) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsNumber()) throw Napi::TypeError::New(options.Env(), std::string("option '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline std::optional<bool> OptionalBool(const Napi::Object& options, const char* key) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsBoolean()) throw Napi::TypeError::New(options.Env(), std::string("option '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

/** A key the caller must pass (no default on this side of the boundary): a TypeError naming it otherwise. */
inline Napi::Value RequiredValue(const Napi::Object& options, const char* key) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) throw Napi::TypeError::New(options.Env(), std::string("option '") + key + "' is required");
  return v;
}

inline std::string RequiredString(const Napi::Object& options, const char* key) {
  RequiredValue(options, key);
  if (options.Get(key).IsNull()) throw Napi::TypeError::New(options.Env(), std::string("option '") + key + "' must be a string");
  return *OptionalString(options, key);
}

inline double RequiredNumber(const Napi::Object& options, const char* key) {
  RequiredValue(options, key);
  if (options.Get(key).IsNull()) throw Napi::TypeError::New(options.Env(), std::string("option '") + key + "' must be a number");
  return *OptionalNumber(options, key);
}

inline bool RequiredBool(const Napi::Object& options, const char* key) {
  RequiredValue(options, key);
  if (options.Get(key).IsNull()) throw Napi::TypeError::New(options.Env(), std::string("option '") + key + "' must be a boolean");
  return *OptionalBool(options, key);
}

inline std::map<std::string, std::string> StringMap(const Napi::Value& value, const char* what) {
  std::map<std::string, std::string> out;
  if (value.IsUndefined() || value.IsNull()) return out;
  if (!value.IsObject()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be an object of strings");
  Napi::Object object = value.As<Napi::Object>();
  Napi::Array keys = object.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = object.Get(key);
    if (!v.IsString()) throw Napi::TypeError::New(value.Env(), std::string(what) + "." + key + " must be a string");
    out[key] = v.As<Napi::String>().Utf8Value();
  }
  return out;
}

inline Napi::Object StringMapToJs(Napi::Env env, const std::map<std::string, std::string>& map) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [k, v] : map) out.Set(k, v);
  return out;
}

}  // namespace clip::binding
