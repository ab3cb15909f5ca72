// Trainer objects for JS: createTrainer(model, options) and the NativeTrainer class. One N-API call
// per train step; the step itself (native/train/) runs on the thread pool under the model's lock.
#include <ATen/record_function.h>
#include <napi.h>

#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/dist_binding.h"
#include "binding/js_values.h"
#include "binding/model_handle.h"
#include "binding/model_wrap.h"
#include "binding/tensor_js.h"
#include "runtime/profile.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace clip::binding {
namespace {

struct TrainerHandle {
  ModelPtr model;
  std::unique_ptr<train::Trainer> trainer;
};
using TrainerPtr = std::shared_ptr<TrainerHandle>;

/** `[beta1, beta2]` of option 'betas'. */
std::pair<double, double> ParseBetas(const Napi::Object& o) {
  Napi::Value betas = RequiredValue(o, "betas");
  if (!betas.IsArray() || betas.As<Napi::Array>().Length() != 2) throw Napi::TypeError::New(o.Env(), "option 'betas' must be [beta1, beta2]");
  const Napi::Array pair = betas.As<Napi::Array>();
  if (!pair.Get(0u).IsNumber() || !pair.Get(1u).IsNumber()) throw Napi::TypeError::New(o.Env(), "option 'betas' must be [beta1, beta2]");
  return {pair.Get(0u).As<Napi::Number>().DoubleValue(), pair.Get(1u).As<Napi::Number>().DoubleValue()};
}

/** Option 'freeze': regular expressions over parameter names. */
std::vector<std::string> ParseFreeze(const Napi::Object& o) {
  Napi::Value freeze = RequiredValue(o, "freeze");
  if (!freeze.IsArray()) throw Napi::TypeError::New(o.Env(), "option 'freeze' must be an array of regular expressions");
  std::vector<std::string> out;
  Napi::Array list = freeze.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    if (!list.Get(i).IsString()) throw Napi::TypeError::New(o.Env(), "option 'freeze' must be an array of regular expressions");
    out.push_back(list.Get(i).As<Napi::String>().Utf8Value());
  }
  return out;
}

/** A string option that must be one of two words; returns whether it is the first. */
bool IsFirstOf(const Napi::Object& o, const char* key, const char* first, const char* second) {
  const std::string value = RequiredString(o, key);
  if (value != first && value != second)
    throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be '" + first + "' or '" + second + "'");
  return value == first;
}

// Every key is required and none has a default here: the defaults are TypeScript's
// (src/train/trainer.ts DEFAULT_TRAINER_OPTIONS), one place for the CLI, the library and this binding.
train::TrainerOptions ParseTrainerOptions(const Napi::Object& o) {
  train::TrainerOptions t;
  t.adamw = !IsFirstOf(o, "optimizer", "adam", "adamw");
  std::tie(t.adam.beta1, t.adam.beta2) = ParseBetas(o);
  t.adam.eps = RequiredNumber(o, "eps");
  t.adam.weight_decay = RequiredNumber(o, "weightDecay");
  t.precision = model::parse_precision(RequiredString(o, "precision"));
  t.batchnorm_train = !IsFirstOf(o, "batchNorm", "frozen", "train");
  t.grad_clip_norm = RequiredNumber(o, "gradClip");
  t.accumulate = static_cast<int64_t>(RequiredNumber(o, "accumulate"));
  t.accumulation = IsFirstOf(o, "accumulateMode", "contrastive", "independent") ? train::TrainerOptions::Accumulation::kContrastive
                                                                                 : train::TrainerOptions::Accumulation::kIndependent;
  t.grad_checkpointing = RequiredBool(o, "gradCheckpointing");
  t.lock_image = RequiredBool(o, "lockImage");
  t.lock_text = RequiredBool(o, "lockText");
  t.clamp_logit_scale = RequiredBool(o, "clampLogitScale");
  t.cuda_graph = RequiredBool(o, "cudaGraph");
  t.scaler.init_scale = RequiredNumber(o, "initScale");
  t.scaler.growth_interval = static_cast<int64_t>(RequiredNumber(o, "growthInterval"));
  Napi::Value group = RequiredValue(o, "group");  // null: one process
  if (!group.IsNull()) t.group = GroupWrap::Unwrap(group, "option 'group'");
  t.local_loss = RequiredBool(o, "localLoss");
  t.freeze = ParseFreeze(o);
  return t;
}

// The arguments step() and profile() share: (images, tokens, labels | null, {lr, …}).
struct StepInputs {
  at::Tensor images, tokens;
  std::optional<at::Tensor> labels;
  double lr;
  Napi::Object options;
  std::vector<Napi::Value> keep;  // the JS values whose memory the tensors borrow
};

StepInputs ParseStepInputs(const Napi::CallbackInfo& info, const char* call) {
  StepInputs in;
  JsTensor images = TensorFromJs(info[0], "images");
  JsTensor tokens = TensorFromJs(info[1], "tokens");
  in.images = images.tensor;
  in.tokens = tokens.tensor;
  in.keep = {images.holder, tokens.holder};
  if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) {
    JsTensor labels = TensorFromJs(info[2], "labels");
    in.labels = labels.tensor;
    in.keep.push_back(labels.holder);
  }
  in.options = OptionsArg(info, 3);
  auto lr = OptionalNumber(in.options, "lr");
  if (!lr) throw Napi::TypeError::New(info.Env(), std::string(call) + ": option 'lr' is required");
  in.lr = *lr;
  return in;
}

Napi::Value StepResultToJs(Napi::Env env, train::StepResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", r.loss);
  out.Set("lossRead", r.read);
  out.Set("readDeferred", r.deferred);
  out.Set("boundary", r.boundary);
  out.Set("skipped", r.skipped);
  out.Set("gradNorm", r.grad_norm);
  out.Set("lossScale", r.loss_scale);
  out.Set("nonFiniteRun", r.non_finite_run);
  return out;
}

Napi::Object CountersToJs(Napi::Env env, const train::TrainerCounters& c) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("optimizerSteps", static_cast<double>(c.optimizer_steps));
  out.Set("microSteps", static_cast<double>(c.micro_steps));
  return out;
}

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "NativeTrainer",
                                      {
                                          InstanceMethod<&TrainerWrap::Step>("step"),
                                          InstanceMethod<&TrainerWrap::TakeRead>("takeRead"),
                                          InstanceMethod<&TrainerWrap::Profile>("profile"),
                                          InstanceMethod<&TrainerWrap::Counters>("counters"),
                                          InstanceMethod<&TrainerWrap::Stats>("stats"),
                                          InstanceMethod<&TrainerWrap::Flush>("flush"),
                                          InstanceMethod<&TrainerWrap::ResetEpochStats>("resetEpochStats"),
                                          InstanceMethod<&TrainerWrap::Info>("info"),
                                          InstanceMethod<&TrainerWrap::SaveCheckpoint>("saveCheckpoint"),
                                          InstanceMethod<&TrainerWrap::LoadCheckpoint>("loadCheckpoint"),
                                          InstanceMethod<&TrainerWrap::Dispose>("dispose"),
                                      });
    GetAddonData(env).trainer_constructor = Napi::Persistent(ctor);
    exports.Set("NativeTrainer", ctor);
  }

  static Napi::Object NewInstance(Napi::Env env, const TrainerPtr& handle) {
    return NewWrapped(env, GetAddonData(env).trainer_constructor, handle);
  }

  explicit TrainerWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<TrainerWrap>(info),
        handle_(HandleFromConstructor<TrainerPtr>(info, "NativeTrainer cannot be constructed directly: use createTrainer()")) {}

 private:
  // step(images, tokens, labels | null, {lr, readLoss, deferRead}) → Promise<{loss, lossRead, readDeferred,
  // boundary, skipped, gradNorm, lossScale, nonFiniteRun}>
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      StepInputs in = ParseStepInputs(info, "step()");
      const bool read_back = OptionalBool(in.options, "readLoss").value_or(true);
      const bool defer_read = OptionalBool(in.options, "deferRead").value_or(false);
      TrainerPtr handle = Live(env);
      return RunAsync<train::StepResult>(
          env,
          [handle, images = in.images, tokens = in.tokens, labels = in.labels, lr = in.lr, read_back, defer_read]() {
            std::lock_guard<std::mutex> lock(handle->model->mutex);
            return handle->trainer->step(images, tokens, labels, lr, read_back, defer_read);
          },
          StepResultToJs, in.keep);
    });
  }

  // takeRead() → Promise<step result>: the values of the oldest step that deferred its read. It waits
  // for them without the model's lock, so the step queued after it can run meanwhile.
  Napi::Value TakeRead(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      TrainerPtr handle = Live(env);
      return RunAsync<train::StepResult>(env, [handle]() { return handle->trainer->take_read(); }, StepResultToJs);
    });
  }

  // profile(images, tokens, labels | null, {lr, steps, trace}) → Promise<[{name, device, calls, totalUs}]>:
  // `steps` real train steps (they update the weights) under the profiler, on one worker thread.
  Napi::Value Profile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      StepInputs in = ParseStepInputs(info, "profile()");
      const double steps = OptionalNumber(in.options, "steps").value_or(3);
      if (!(steps >= 1 && steps <= 1000) || steps != static_cast<int64_t>(steps))
        throw Napi::TypeError::New(env, "profile(): option 'steps' must be an integer from 1 to 1000");
      const std::string trace = OptionalString(in.options, "trace").value_or("");
      TrainerPtr handle = Live(env);
      using Rows = std::vector<runtime::ProfileRow>;
      return RunAsync<Rows>(
          env,
          [handle, images = in.images, tokens = in.tokens, labels = in.labels, lr = in.lr, steps = static_cast<int64_t>(steps), trace]() {
            std::lock_guard<std::mutex> lock(handle->model->mutex);
            auto& trainer = *handle->trainer;
            // The last step reads its loss back, so every kernel has run before the profiler stops.
            auto work = [&] {
              for (int64_t i = 0; i < steps; ++i) {
                RECORD_USER_SCOPE("clip_native::train_step");  // the whole step, as one row of the profile
                trainer.step(images, tokens, labels, lr, /*read_back=*/i == steps - 1);
              }
            };
            return runtime::profile(work, handle->model->device.is_cuda(), trace);
          },
          [](Napi::Env e, Rows& rows) -> Napi::Value {
            Napi::Array out = Napi::Array::New(e, rows.size());
            for (size_t i = 0; i < rows.size(); ++i) {
              Napi::Object row = Napi::Object::New(e);
              row.Set("name", rows[i].name);
              row.Set("device", rows[i].device);
              row.Set("calls", static_cast<double>(rows[i].calls));
              row.Set("totalUs", rows[i].total_us);
              out.Set(static_cast<uint32_t>(i), row);
            }
            return out;
          },
          in.keep);
    });
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Object out = CountersToJs(info.Env(), Live(info.Env())->trainer->counters());
    out.Set("pendingMicroBatches", static_cast<double>(handle_->trainer->pending_micro_batches()));
    return out;
  }

  // flush({lr, readLoss}) → Promise<step result>: applies an incomplete accumulation group.
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      Napi::Object options = OptionsArg(info, 0);
      auto lr = OptionalNumber(options, "lr");
      if (!lr) throw Napi::TypeError::New(env, "flush(): option 'lr' is required");
      const bool read_back = OptionalBool(options, "readLoss").value_or(true);
      TrainerPtr handle = Live(env);
      return RunAsync<train::StepResult>(
          env,
          [handle, lr = *lr, read_back]() {
            std::lock_guard<std::mutex> lock(handle->model->mutex);
            return handle->trainer->flush(lr, read_back);
          },
          StepResultToJs);
    });
  }

  // stats() → Promise<{skippedSteps, lossSum, lossCount, nonFiniteRun}>: one device read-back.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      TrainerPtr handle = Live(env);
      return RunAsync<train::TrainerStats>(
          env,
          [handle]() {
            std::lock_guard<std::mutex> lock(handle->model->mutex);
            return handle->trainer->stats();
          },
          [](Napi::Env e, train::TrainerStats& s) -> Napi::Value {
            Napi::Object out = Napi::Object::New(e);
            out.Set("skippedSteps", s.skipped_steps);
            out.Set("lossSum", s.loss_sum);
            out.Set("lossCount", s.loss_count);
            out.Set("nonFiniteRun", s.non_finite_run);
            return out;
          });
    });
  }

  Napi::Value ResetEpochStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      TrainerPtr handle = Live(env);
      return RunAsync<bool>(
          env,
          [handle]() {
            std::lock_guard<std::mutex> lock(handle->model->mutex);
            handle->trainer->reset_epoch_stats();
            return true;
          },
          [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
    });
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("trainableParameters", static_cast<double>(Live(info.Env())->trainer->trainable_parameters()));
    out.Set("frozenParameters", static_cast<double>(handle_->trainer->frozen_parameters()));
    out.Set("cudaGraph", handle_->trainer->graph_status());
    out.Set("textLength", static_cast<double>(handle_->trainer->text_length()));
    out.Set("mostQueuedSteps", static_cast<double>(handle_->trainer->most_queued_steps()));
    out.Set("stepsQueuedLimit", static_cast<double>(train::Trainer::kStepsQueued));
    return out;
  }

  Napi::Value SaveCheckpoint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      const std::string path = StringArg(info, 0, "path");
      auto metadata = StringMap(info.Length() > 1 ? info[1] : env.Undefined(), "metadata");
      TrainerPtr handle = Live(env);
      return RunAsync<bool>(
          env,
          [handle, path, metadata]() {
            std::lock_guard<std::mutex> lock(handle->model->mutex);
            train::save_checkpoint(path, handle->model->model, *handle->trainer, metadata);
            return true;
          },
          [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
    });
  }

  Napi::Value LoadCheckpoint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&]() -> Napi::Value {
      const std::string path = StringArg(info, 0, "path");
      TrainerPtr handle = Live(env);
      using Meta = std::map<std::string, std::string>;
      return RunAsync<Meta>(
          env,
          [handle, path]() {
            std::lock_guard<std::mutex> lock(handle->model->mutex);
            return train::load_checkpoint(path, handle->model->model, *handle->trainer);
          },
          [](Napi::Env e, Meta& metadata) -> Napi::Value { return StringMapToJs(e, metadata); });
    });
  }

  // dispose(): the trainer's optimizer state and gradients go once pending work has ended (it holds
  // its own reference); the model stays. Any later call throws.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    handle_.reset();
    return info.Env().Undefined();
  }

  const TrainerPtr& Live(Napi::Env env) const {
    if (!handle_) throw Napi::Error::New(env, "this trainer was disposed");
    return handle_;
  }

  TrainerPtr handle_;
};

// createTrainer(model, options) → Promise<NativeTrainer>
Napi::Value CreateTrainerJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    ModelPtr model = ModelWrap::Unwrap(info[0], "model");
    train::TrainerOptions options = ParseTrainerOptions(OptionsArg(info, 1));
    return RunAsync<TrainerPtr>(
        env,
        [model, options]() {
          std::lock_guard<std::mutex> lock(model->mutex);
          auto handle = std::make_shared<TrainerHandle>();
          handle->model = model;
          handle->trainer = std::make_unique<train::Trainer>(model->model, model->device, options);
          return handle;
        },
        [](Napi::Env e, TrainerPtr& handle) -> Napi::Value { return TrainerWrap::NewInstance(e, handle); });
  });
}

}  // namespace

void RegisterTrainer(Napi::Env env, Napi::Object exports) {
  TrainerWrap::Init(env, exports);
  exports.Set("createTrainer", Napi::Function::New(env, CreateTrainerJs, "createTrainer"));
}

}  // namespace clip::binding
