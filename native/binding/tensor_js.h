// Tensors across the boundary: JS `{data: TypedArray, shape: number[]}` ⇄ at::Tensor.
// Inputs are wrapped without copying (the caller keeps the TypedArray alive for the call);
// outputs become external ArrayBuffers that own a reference to the tensor's storage.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <string>
#include <vector>

namespace clip::binding {

struct JsTensor {
  at::Tensor tensor;       // a view over the JS memory: valid while `holder` is referenced
  Napi::Value holder;      // the TypedArray to keep alive
};

/** `{data, shape}` → tensor view. `what` names the argument in error messages. */
JsTensor TensorFromJs(const Napi::Value& value, const std::string& what);

/** tensor → `{data, shape}` (copied to a contiguous CPU tensor first when needed). */
Napi::Object TensorToJs(Napi::Env env, const at::Tensor& tensor);

std::vector<int64_t> ShapeFromJs(const Napi::Value& value, const std::string& what);

/** "cpu", "cuda", "cuda:1" → device, with a clear error when CUDA is absent. */
at::Device DeviceFromString(const std::string& text);

}  // namespace clip::binding
