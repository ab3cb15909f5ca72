// Model objects for JS: createModel / loadModel and the Model class. Each method converts its
// arguments, then runs the work on the thread pool under the model's lock.
#include <napi.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/js_values.h"
#include "binding/model_handle.h"
#include "binding/model_wrap.h"
#include "binding/tensor_js.h"
#include "runtime/transfer.h"
#include "model/config_json.h"
#include "model/model_files.h"
#include "model/precision.h"

namespace clip::binding {
namespace {

// torch::manual_seed sets the process-wide generator: seeded construction must not interleave.
std::mutex g_seed_mutex;

struct EncodeResult {
  at::Tensor tensor;
};

/** 'auto' (channels-last for ResNets on CUDA), 'channels_last' or 'contiguous'. */
bool ChannelsLastOption(const Napi::Object& options, const at::Device& device) {
  const std::string format = OptionalString(options, "memoryFormat").value_or("auto");
  if (format == "auto") return device.is_cuda();
  if (format == "channels_last") return true;
  if (format == "contiguous") return false;
  throw Napi::TypeError::New(options.Env(), "option 'memoryFormat' must be 'auto', 'channels_last' or 'contiguous'");
}

model::Precision PrecisionOption(const Napi::Object& options) {
  return model::parse_precision(OptionalString(options, "precision").value_or("fp32"));
}

Napi::Array ReportList(Napi::Env env, const std::vector<std::string>& items) {
  Napi::Array out = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); ++i) out.Set(static_cast<uint32_t>(i), items[i]);
  return out;
}

Napi::Value CreateModelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const model::ClipConfig config = model::config_from_json(StringArg(info, 0, "config"));
    Napi::Object options = OptionsArg(info, 1);
    const auto seed = static_cast<uint64_t>(OptionalNumber(options, "seed").value_or(0));
    const at::Device device = DeviceFromString(OptionalString(options, "device").value_or("cpu"));
    const bool channels_last = ChannelsLastOption(options, device);
    return RunAsync<ModelPtr>(
        env,
        [config, seed, device, channels_last]() {
          auto handle = std::make_shared<ModelHandle>();
          {
            std::lock_guard<std::mutex> lock(g_seed_mutex);
            torch::manual_seed(seed);
            handle->model = model::Clip(config);
          }
          handle->model->to(device);
          handle->model->set_channels_last(channels_last);
          handle->device = device;
          return handle;
        },
        [](Napi::Env e, ModelPtr& handle) -> Napi::Value { return ModelWrap::NewInstance(e, handle); });
  });
}

struct LoadResult {
  ModelPtr handle;
  model::LoadedModel loaded;
};

Napi::Value LoadModelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const std::vector<std::string> paths = StringsArg(info, 0, "path");
    Napi::Object options = OptionsArg(info, 1);
    const at::Device device = DeviceFromString(OptionalString(options, "device").value_or("cpu"));
    const bool strict = OptionalBool(options, "strict").value_or(true);
    std::optional<model::ClipConfig> config;
    if (auto json = OptionalString(options, "config")) {
      try {
        config = model::config_from_json(*json);
      } catch (const std::exception& e) {
        // The configuration is the file's (its metadata, a file beside it) or the caller's: say which file it is for.
        throw std::invalid_argument(paths[0] + ": the configuration to load it with is not valid: " + e.what());
      }
    }
    const bool channels_last = ChannelsLastOption(options, device);
    return RunAsync<LoadResult>(
        env,
        [paths, device, strict, config, channels_last]() {
          LoadResult result;
          result.loaded = model::load_model_files(paths, config, strict);
          result.handle = std::make_shared<ModelHandle>();
          result.handle->model = result.loaded.model;
          result.handle->model->to(device);
          result.handle->model->set_channels_last(channels_last);
          result.handle->device = device;
          result.handle->model->eval();
          return result;
        },
        [](Napi::Env e, LoadResult& result) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          out.Set("model", ModelWrap::NewInstance(e, result.handle));
          out.Set("format", result.loaded.format);
          out.Set("configSource", result.loaded.config_source);
          out.Set("hfNames", result.loaded.hf_names);
          out.Set("metadata", StringMapToJs(e, result.loaded.metadata));
          Napi::Object report = Napi::Object::New(e);
          report.Set("missing", ReportList(e, result.loaded.report.missing));
          report.Set("unexpected", ReportList(e, result.loaded.report.unexpected));
          report.Set("mismatched", ReportList(e, result.loaded.report.mismatched));
          report.Set("ignored", ReportList(e, result.loaded.report.ignored));
          out.Set("report", report);
          return out;
        });
  });
}

}  // namespace

Napi::Object ModelWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeModel",
                                    {
                                        InstanceMethod<&ModelWrap::Config>("config"),
                                        InstanceMethod<&ModelWrap::Device>("device"),
                                        InstanceMethod<&ModelWrap::EncodeImage>("encodeImage"),
                                        InstanceMethod<&ModelWrap::EncodeText>("encodeText"),
                                        InstanceMethod<&ModelWrap::Forward>("forward"),
                                        InstanceMethod<&ModelWrap::SetTraining>("setTraining"),
                                        InstanceMethod<&ModelWrap::IsTraining>("isTraining"),
                                        InstanceMethod<&ModelWrap::CopyWeights>("copyWeights"),
                                        InstanceMethod<&ModelWrap::StateDict>("stateDict"),
                                        InstanceMethod<&ModelWrap::LoadStateDict>("loadStateDict"),
                                        InstanceMethod<&ModelWrap::ParameterCount>("parameterCount"),
                                        InstanceMethod<&ModelWrap::LogitScale>("logitScale"),
                                        InstanceMethod<&ModelWrap::Dispose>("dispose"),
                                    });
  GetAddonData(env).model_constructor = Napi::Persistent(ctor);
  exports.Set("NativeModel", ctor);
  return exports;
}

Napi::Object ModelWrap::NewInstance(Napi::Env env, const ModelPtr& handle) {
  return NewWrapped(env, GetAddonData(env).model_constructor, handle);
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ModelWrap>(info),
      handle_(HandleFromConstructor<ModelPtr>(info, "NativeModel cannot be constructed directly: use createModel() or loadModel()")) {}

const ModelPtr& ModelWrap::Handle(Napi::Env env) const {
  if (!handle_) throw Napi::Error::New(env, "this model was disposed");
  return handle_;
}

ModelPtr ModelWrap::Unwrap(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetAddonData(value.Env()).model_constructor.Value()))
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a model from createModel() or loadModel()");
  return ModelWrap::Unwrap(value.As<Napi::Object>())->Handle(value.Env());
}

Napi::Value ModelWrap::Config(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), model::config_to_json(Handle(info.Env())->model->config()));
}

Napi::Value ModelWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Handle(info.Env())->device.str());
}

namespace {

// The shared shape of the three inference calls: lock, move inputs to the model's device, autocast,
// no autograd, fp32 results back on the CPU.
template <typename Body>
Napi::Value RunInference(const Napi::CallbackInfo& info, const ModelPtr& handle, model::Precision precision, std::vector<JsTensor> inputs,
                         Body body) {
  std::vector<Napi::Value> keep;
  std::vector<at::Tensor> tensors;
  for (auto& input : inputs) {
    keep.push_back(input.holder);
    tensors.push_back(input.tensor);
  }
  using Out = std::vector<at::Tensor>;
  return RunAsync<Out>(
      info.Env(),
      [handle, precision, tensors, body]() {
        std::lock_guard<std::mutex> lock(handle->mutex);
        torch::NoGradGuard no_grad;
        std::vector<at::Tensor> on_device;
        for (const auto& t : tensors) {
          // Token ids are checked while still on the host: on a GPU a bad id would be a device assert.
          const bool tokens = t.scalar_type() == at::kInt || t.scalar_type() == at::kLong;
          if (tokens) handle->model->check_tokens(t);
          on_device.push_back(runtime::to_device(tokens ? handle->model->trim_tokens(t) : t, handle->device));
        }
        Out out;
        {
          model::AutocastGuard autocast(handle->device.type(), precision);
          out = body(*handle->model, on_device);
        }
        for (auto& t : out) t = t.to(at::kCPU, at::kFloat).contiguous();
        return out;
      },
      [](Napi::Env e, Out& out) -> Napi::Value {
        if (out.size() == 1) return TensorToJs(e, out[0]);
        Napi::Object result = Napi::Object::New(e);
        result.Set("logitsPerImage", TensorToJs(e, out[0]));
        result.Set("logitsPerText", TensorToJs(e, out[1]));
        return result;
      },
      keep);
}

}  // namespace

Napi::Value ModelWrap::EncodeImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    return RunInference(info, Handle(env), PrecisionOption(OptionsArg(info, 1)), {TensorFromJs(info[0], "images")},
                        [](model::ClipImpl& m, const std::vector<at::Tensor>& in) { return std::vector<at::Tensor>{m.encode_image(in[0])}; });
  });
}

Napi::Value ModelWrap::EncodeText(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    return RunInference(info, Handle(env), PrecisionOption(OptionsArg(info, 1)), {TensorFromJs(info[0], "tokens")},
                        [](model::ClipImpl& m, const std::vector<at::Tensor>& in) { return std::vector<at::Tensor>{m.encode_text(in[0])}; });
  });
}

Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    return RunInference(info, Handle(env), PrecisionOption(OptionsArg(info, 2)), {TensorFromJs(info[0], "images"), TensorFromJs(info[1], "tokens")},
                        [](model::ClipImpl& m, const std::vector<at::Tensor>& in) {
                          model::Logits logits = m.forward(in[0], in[1]);
                          return std::vector<at::Tensor>{logits.per_image, logits.per_text};
                        });
  });
}

Napi::Value ModelWrap::SetTraining(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsBoolean()) throw Napi::TypeError::New(env, "setTraining(on): on must be a boolean");
    const ModelPtr& handle = Handle(env);
    std::lock_guard<std::mutex> lock(handle->mutex);
    handle->model->train(info[0].As<Napi::Boolean>().Value());
    return env.Undefined();
  });
}

Napi::Value ModelWrap::IsTraining(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Handle(info.Env())->model->is_training());
}

namespace {

model::WeightNaming NamingOption(const Napi::Object& options) {
  const std::string naming = OptionalString(options, "naming").value_or("openai");
  if (naming != "openai" && naming != "hf") throw Napi::TypeError::New(options.Env(), "option 'naming' must be 'openai' or 'hf'");
  return naming == "hf" ? model::WeightNaming::kHuggingFace : model::WeightNaming::kOpenAI;
}

std::string FormatOption(const Napi::Object& options) {
  const std::string format = OptionalString(options, "format").value_or("safetensors");
  if (format != "safetensors" && format != "pt") throw Napi::TypeError::New(options.Env(), "option 'format' must be 'safetensors' or 'pt'");
  return format;
}

}  // namespace

// copyWeights({naming}) → {save(path, {format, metadata}) → Promise}: the model is held only while its
// weights are copied; each save writes that copy, however the model has changed since (ClipModel.save
// is a copy and one save; the training loop writes an epoch's weights while the next epoch trains).
Napi::Value ModelWrap::CopyWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const model::WeightNaming naming = NamingOption(OptionsArg(info, 0));
    ModelPtr handle = Handle(env);
    using Copy = std::shared_ptr<const model::ModelSnapshot>;
    return RunAsync<Copy>(
        env,
        [handle, naming]() {
          std::lock_guard<std::mutex> lock(handle->mutex);
          return std::make_shared<const model::ModelSnapshot>(model::snapshot_model(handle->model, naming));
        },
        [](Napi::Env e, Copy& copy) -> Napi::Value {
          auto out = Napi::Object::New(e);
          out.Set("save", Napi::Function::New(e, [copy](const Napi::CallbackInfo& call) -> Napi::Value {
            Napi::Env env = call.Env();
            return Guard(env, [&]() -> Napi::Value {
              const std::string path = StringArg(call, 0, "path");
              Napi::Object options = OptionsArg(call, 1);
              const std::string format = FormatOption(options);
              auto metadata = StringMap(options.Get("metadata"), "metadata");
              // Test hook: the write waits this long first, so a test sees train steps finish meanwhile.
              const char* delay = std::getenv("CLIP_NATIVE_TEST_SAVE_DELAY_MS");
              const int delay_ms = delay != nullptr ? std::atoi(delay) : 0;
              return RunAsync<bool>(
                  env,
                  [copy, path, format, metadata, delay_ms]() {
                    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
                    model::write_model_file(*copy, path, format, metadata);
                    return true;
                  },
                  [](Napi::Env e2, bool&) -> Napi::Value { return e2.Undefined(); });
            });
          }, "save"));
          return out;
        });
  });
}

Napi::Value ModelWrap::StateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    ModelPtr handle = Handle(env);
    using Out = model::NamedTensors;
    return RunAsync<Out>(
        env,
        [handle]() {
          std::lock_guard<std::mutex> lock(handle->mutex);
          Out state = model::state_dict(*handle->model);
          for (auto& [_, t] : state) t = t.detach().to(at::kCPU).clone();
          return state;
        },
        [](Napi::Env e, Out& state) -> Napi::Value {
          Napi::Array out = Napi::Array::New(e, state.size());
          for (size_t i = 0; i < state.size(); ++i) {
            Napi::Object entry = Napi::Object::New(e);
            entry.Set("name", state[i].first);
            entry.Set("tensor", TensorToJs(e, state[i].second));
            out.Set(static_cast<uint32_t>(i), entry);
          }
          return out;
        });
  });
}

Napi::Value ModelWrap::LoadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "loadStateDict(entries): entries must be an array of {name, tensor}");
    Napi::Array entries = info[0].As<Napi::Array>();
    const bool strict = OptionalBool(OptionsArg(info, 1), "strict").value_or(true);
    model::NamedTensors weights;
    std::vector<Napi::Value> keep;
    for (uint32_t i = 0; i < entries.Length(); ++i) {
      Napi::Value entry = entries.Get(i);
      if (!entry.IsObject()) throw Napi::TypeError::New(env, "loadStateDict: entry " + std::to_string(i) + " must be {name, tensor}");
      Napi::Object object = entry.As<Napi::Object>();
      if (!object.Get("name").IsString()) throw Napi::TypeError::New(env, "loadStateDict: entry " + std::to_string(i) + " has no name");
      const std::string name = object.Get("name").As<Napi::String>().Utf8Value();
      JsTensor tensor = TensorFromJs(object.Get("tensor"), name);
      weights.emplace_back(name, tensor.tensor);
      keep.push_back(tensor.holder);
    }
    ModelPtr handle = Handle(env);
    return RunAsync<model::LoadReport>(
        env,
        [handle, weights, strict]() {
          std::lock_guard<std::mutex> lock(handle->mutex);
          return model::load_state_dict(*handle->model, weights, strict);
        },
        [](Napi::Env e, model::LoadReport& report) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          out.Set("missing", ReportList(e, report.missing));
          out.Set("unexpected", ReportList(e, report.unexpected));
          out.Set("mismatched", ReportList(e, report.mismatched));
          out.Set("ignored", ReportList(e, report.ignored));
          return out;
        },
        keep);
  });
}

Napi::Value ModelWrap::ParameterCount(const Napi::CallbackInfo& info) {
  int64_t count = 0;
  for (const auto& p : Handle(info.Env())->model->parameters()) count += p.numel();
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

Napi::Value ModelWrap::LogitScale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const ModelPtr& handle = Handle(env);
    std::lock_guard<std::mutex> lock(handle->mutex);
    return Napi::Number::New(env, handle->model->logit_scale.detach().to(at::kCPU).item<double>());
  });
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  handle_.reset();  // pending work keeps its own reference; memory goes when the last one ends
  return info.Env().Undefined();
}

void RegisterModel(Napi::Env env, Napi::Object exports) {
  ModelWrap::Init(env, exports);
  exports.Set("createModel", Napi::Function::New(env, CreateModelJs, "createModel"));
  exports.Set("loadModel", Napi::Function::New(env, LoadModelJs, "loadModel"));
}

}  // namespace clip::binding
