// runtimeInfo(): what doctor prints; matmul(): a small op that exercises the tensor boundary
// (zero-copy inputs, external-buffer outputs, async errors) without needing a model.
#include <ATen/Parallel.h>
#include <napi.h>

#include "binding/async.h"
#include "binding/tensor_js.h"
#include "runtime/info.h"

namespace clip::binding {
namespace {

Napi::Value RuntimeInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    RuntimeInfo runtime = runtime_info();
    auto out = Napi::Object::New(env);
    out.Set("torchVersion", runtime.torch_version);
    out.Set("builtWithCuda", runtime.built_with_cuda);
    out.Set("cudaAvailable", runtime.cuda_available);
    out.Set("cudaGraphs", runtime.cuda_graphs);
    out.Set("cudaKernels", runtime.cuda_kernels);
    out.Set("threads", runtime.threads);
    out.Set("cpuBf16", runtime.cpu_bf16);
    out.Set("parallelInfo", runtime.parallel_info);
    auto devices = Napi::Array::New(env, runtime.devices.size());
    for (size_t i = 0; i < runtime.devices.size(); ++i) {
      const CudaDevice& d = runtime.devices[i];
      auto device = Napi::Object::New(env);
      device.Set("index", d.index);
      device.Set("name", d.name);
      device.Set("capability", d.capability);
      device.Set("memoryBytes", static_cast<double>(d.memory_bytes));
      device.Set("bf16", d.bf16);
      devices.Set(static_cast<uint32_t>(i), device);
    }
    out.Set("devices", devices);
    return out;
  });
}

// cudaMemory(device, resetPeak) → {available, allocatedBytes, reservedBytes, peakAllocatedBytes, peakReservedBytes}
Napi::Value CudaMemoryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "cudaMemory(device, resetPeak): device must be a CUDA device index");
    const CudaMemory m = cuda_memory(info[0].As<Napi::Number>().Int32Value(), info.Length() > 1 && info[1].ToBoolean().Value());
    auto out = Napi::Object::New(env);
    out.Set("available", m.available);
    out.Set("allocatedBytes", static_cast<double>(m.allocated));
    out.Set("reservedBytes", static_cast<double>(m.reserved));
    out.Set("peakAllocatedBytes", static_cast<double>(m.peak_allocated));
    out.Set("peakReservedBytes", static_cast<double>(m.peak_reserved));
    return out;
  });
}

Napi::Value SetThreadsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsNumber() || info[0].As<Napi::Number>().Int32Value() < 1)
      throw Napi::TypeError::New(env, "setThreads(n): n must be a positive integer");
    at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
    return env.Undefined();
  });
}

Napi::Value MatmulJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    JsTensor a = TensorFromJs(info[0], "a");
    JsTensor b = TensorFromJs(info[1], "b");
    return RunAsync<at::Tensor>(
        env, [a = a.tensor, b = b.tensor]() { return at::matmul(a, b); },
        [](Napi::Env e, at::Tensor& out) -> Napi::Value { return TensorToJs(e, out); }, {a.holder, b.holder});
  });
}

}  // namespace

void RegisterRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("runtimeInfo", Napi::Function::New(env, RuntimeInfoJs, "runtimeInfo"));
  exports.Set("cudaMemory", Napi::Function::New(env, CudaMemoryJs, "cudaMemory"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreadsJs, "setThreads"));
  exports.Set("matmul", Napi::Function::New(env, MatmulJs, "matmul"));
}

}  // namespace clip::binding
