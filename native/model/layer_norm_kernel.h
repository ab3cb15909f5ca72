// LayerNorm through the CUDA kernels of native/kernels/layer_norm.cu (experiment "layernorm-kernel"),
// with its own backward. Where they are not built in, or for tensors they do not take (CPU, fp64, an
// empty batch, γ/β not fp32 on the input's device), the caller's composite form.
#pragma once
#include <ATen/ATen.h>

#include <optional>

namespace clip::model {

/**
 * LayerNorm over the last dimension (γ, β fp32) in fp32 arithmetic, the output in `out_type`: x's
 * type, or fp16/bf16 from an fp32 x. nullopt where the kernels do not take these tensors.
 */
std::optional<at::Tensor> layer_norm_by_kernel(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps, at::ScalarType out_type);

}  // namespace clip::model
