#include "binding/tensor_js.h"

#include <torch/cuda.h>

#include <memory>
#include <stdexcept>

namespace clip::binding {
namespace {

at::ScalarType ScalarTypeOf(napi_typedarray_type type, const std::string& what) {
  switch (type) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_bigint64_array: return at::kLong;
    case napi_uint8_array: return at::kByte;
    case napi_int8_array: return at::kChar;
    case napi_int16_array: return at::kShort;
    default: throw std::invalid_argument(what + ": unsupported TypedArray type (use Float32Array, Int32Array, BigInt64Array or Uint8Array)");
  }
}

napi_typedarray_type TypedArrayTypeOf(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return napi_float32_array;
    case at::kDouble: return napi_float64_array;
    case at::kInt: return napi_int32_array;
    case at::kLong: return napi_bigint64_array;
    case at::kByte: return napi_uint8_array;
    case at::kBool: return napi_uint8_array;
    case at::kChar: return napi_int8_array;
    case at::kShort: return napi_int16_array;
    default: throw std::invalid_argument(std::string("cannot return a tensor of dtype ") + c10::toString(type) + " to JS");
  }
}

}  // namespace

std::vector<int64_t> ShapeFromJs(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) throw std::invalid_argument(what + ".shape must be an array of integers");
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value dim = array.Get(i);
    if (!dim.IsNumber()) throw std::invalid_argument(what + ".shape[" + std::to_string(i) + "] is not a number");
    double d = dim.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d)))
      throw std::invalid_argument(what + ".shape[" + std::to_string(i) + "] must be a non-negative integer");
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

JsTensor TensorFromJs(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject()) throw std::invalid_argument(what + " must be {data: TypedArray, shape: number[]}");
  auto object = value.As<Napi::Object>();
  Napi::Value data = object.Get("data");
  if (!data.IsTypedArray()) throw std::invalid_argument(what + ".data must be a TypedArray");
  auto typed = data.As<Napi::TypedArray>();
  const at::ScalarType dtype = ScalarTypeOf(typed.TypedArrayType(), what);
  std::vector<int64_t> shape = ShapeFromJs(object.Get("shape"), what);
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const size_t length = typed.ElementLength();
  if (static_cast<size_t>(numel) != length)
    throw std::invalid_argument(what + ": shape " + c10::str(c10::IntArrayRef(shape)) + " holds " + std::to_string(numel) +
                                " elements but data has " + std::to_string(length));
  auto* base = static_cast<uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset();
  const size_t item = c10::elementSize(dtype);
  at::Tensor tensor;
  if (reinterpret_cast<uintptr_t>(base) % item == 0) {
    tensor = at::from_blob(base, shape, at::TensorOptions().dtype(dtype));
  } else {
    // An unaligned view (a Buffer slice, say): copy rather than hand LibTorch a misaligned pointer.
    tensor = at::empty(shape, at::TensorOptions().dtype(dtype));
    std::memcpy(tensor.data_ptr(), base, length * item);
  }
  return {tensor, data};
}

Napi::Object TensorToJs(Napi::Env env, const at::Tensor& input) {
  at::Tensor tensor = input.detach();
  if (tensor.scalar_type() == at::kHalf || tensor.scalar_type() == at::kBFloat16) tensor = tensor.to(at::kFloat);
  tensor = tensor.to(at::kCPU).contiguous();
  const napi_typedarray_type type = TypedArrayTypeOf(tensor.scalar_type());
  const size_t bytes = tensor.nbytes();
  const size_t numel = static_cast<size_t>(tensor.numel());
  Napi::ArrayBuffer buffer;
  if (bytes == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    // The ArrayBuffer owns a reference to the tensor; its finalizer drops it.
    auto* owner = new at::Tensor(tensor);
    buffer = Napi::ArrayBuffer::New(env, owner->data_ptr(), bytes, [](Napi::Env, void*, at::Tensor* t) { delete t; }, owner);
  }
  Napi::Value data;
  switch (type) {
    case napi_float32_array: data = Napi::Float32Array::New(env, numel, buffer, 0); break;
    case napi_float64_array: data = Napi::Float64Array::New(env, numel, buffer, 0); break;
    case napi_int32_array: data = Napi::Int32Array::New(env, numel, buffer, 0); break;
    case napi_bigint64_array: data = Napi::BigInt64Array::New(env, numel, buffer, 0); break;
    case napi_uint8_array: data = Napi::Uint8Array::New(env, numel, buffer, 0); break;
    case napi_int8_array: data = Napi::Int8Array::New(env, numel, buffer, 0); break;
    case napi_int16_array: data = Napi::Int16Array::New(env, numel, buffer, 0); break;
    default: throw std::logic_error("unreachable typed array type");
  }
  auto shape = Napi::Array::New(env, tensor.dim());
  for (int64_t i = 0; i < tensor.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(tensor.size(i))));
  auto result = Napi::Object::New(env);
  result.Set("data", data);
  result.Set("shape", shape);
  return result;
}

at::Device DeviceFromString(const std::string& text) {
  at::Device device(at::kCPU);
  try {
    device = at::Device(text);
  } catch (const std::exception&) {
    throw std::invalid_argument("invalid device '" + text + "': use cpu, cuda or cuda:<index>");
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available())
      throw std::invalid_argument("device '" + text +
                                  "' requested but CUDA is not available (this LibTorch has no CUDA support or sees no GPU); use cpu");
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (device.has_index() && device.index() >= count)
      throw std::invalid_argument("device '" + text + "' does not exist: " + std::to_string(count) + " CUDA device(s)");
    if (!device.has_index()) device = at::Device(at::kCUDA, 0);
  }
  return device;
}

}  // namespace clip::binding
