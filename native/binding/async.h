// Running native work off the event loop. Every long call goes through RunAsync: the work runs on
// libuv's thread pool, any exception it throws becomes a rejected Promise with a JS Error, and the
// result is converted to JS back on the main thread.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "common/errors.h"

namespace clip::binding {

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  PromiseWorker(Napi::Env env, Work work, ToJs to_js, std::vector<Napi::Value> keep_alive)
      : Napi::AsyncWorker(env, "clip-native"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        to_js_(std::move(to_js)) {
    // Inputs wrapped without copying stay referenced until the work is done.
    for (auto& value : keep_alive) refs_.push_back(Napi::Persistent(value));
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = std::make_unique<Result>(work_());
    } catch (...) {
      SetError(current_exception_message());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(to_js_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(Napi::Error::New(env, current_exception_message()).Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  ToJs to_js_;
  std::vector<Napi::Reference<Napi::Value>> refs_;
  std::unique_ptr<Result> result_;
};

/** Queue `work` on the thread pool; returns the Promise of `to_js(result)`. */
template <typename Result>
Napi::Promise RunAsync(Napi::Env env, std::function<Result()> work,
                       std::function<Napi::Value(Napi::Env, Result&)> to_js,
                       std::vector<Napi::Value> keep_alive = {}) {
  auto* worker = new PromiseWorker<Result>(env, std::move(work), std::move(to_js), std::move(keep_alive));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

/** Run a synchronous binding body, turning any C++ exception into a thrown JS Error. */
template <typename F>
auto Guard(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw Napi::Error::New(env, current_exception_message());
  }
}

}  // namespace clip::binding
