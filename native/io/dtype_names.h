// The names each file format uses for element types.
#pragma once

#include <c10/core/ScalarType.h>

#include <optional>
#include <string>

namespace clip::io {

// "F32" <-> at::kFloat etc., for the dtypes this project reads and writes.
std::optional<c10::ScalarType> dtype_from_safetensors(const std::string& name);
std::optional<std::string> safetensors_dtype_name(c10::ScalarType type);

// "FloatStorage" <-> at::kFloat etc. (the class names torch.save pickles).
std::optional<c10::ScalarType> dtype_from_storage_class(const std::string& name);
std::optional<std::string> storage_class_name(c10::ScalarType type);

// "float32" / "float" <-> at::kFloat etc. (attributes of the torch module).
std::optional<c10::ScalarType> dtype_from_torch_attribute(const std::string& name);

}  // namespace clip::io
