#include "dtype_names.h"

#include <array>

namespace clip::io {
namespace {

struct DtypeRow {
  c10::ScalarType type;
  const char* safetensors;
  const char* storage_class;
  const char* torch_name;
  const char* torch_alias;  // the older spelling, e.g. torch.float
};

constexpr std::array<DtypeRow, 10> kDtypes{{
    {c10::ScalarType::Double, "F64", "DoubleStorage", "float64", "double"},
    {c10::ScalarType::Float, "F32", "FloatStorage", "float32", "float"},
    {c10::ScalarType::Half, "F16", "HalfStorage", "float16", "half"},
    {c10::ScalarType::BFloat16, "BF16", "BFloat16Storage", "bfloat16", "bfloat16"},
    {c10::ScalarType::Long, "I64", "LongStorage", "int64", "long"},
    {c10::ScalarType::Int, "I32", "IntStorage", "int32", "int"},
    {c10::ScalarType::Short, "I16", "ShortStorage", "int16", "short"},
    {c10::ScalarType::Char, "I8", "CharStorage", "int8", "int8"},
    {c10::ScalarType::Byte, "U8", "ByteStorage", "uint8", "uint8"},
    {c10::ScalarType::Bool, "BOOL", "BoolStorage", "bool", "bool"},
}};

}  // namespace

std::optional<c10::ScalarType> dtype_from_safetensors(const std::string& name) {
  for (const auto& row : kDtypes)
    if (name == row.safetensors) return row.type;
  return std::nullopt;
}

std::optional<std::string> safetensors_dtype_name(c10::ScalarType type) {
  for (const auto& row : kDtypes)
    if (row.type == type) return std::string(row.safetensors);
  return std::nullopt;
}

std::optional<c10::ScalarType> dtype_from_storage_class(const std::string& name) {
  // An untyped storage is raw bytes; the tensor's own dtype comes elsewhere.
  if (name == "UntypedStorage") return c10::ScalarType::Byte;
  for (const auto& row : kDtypes)
    if (name == row.storage_class) return row.type;
  return std::nullopt;
}

std::optional<std::string> storage_class_name(c10::ScalarType type) {
  for (const auto& row : kDtypes)
    if (row.type == type) return std::string(row.storage_class);
  return std::nullopt;
}

std::optional<c10::ScalarType> dtype_from_torch_attribute(const std::string& name) {
  for (const auto& row : kDtypes)
    if (name == row.torch_name || name == row.torch_alias) return row.type;
  return std::nullopt;
}

}  // namespace clip::io
