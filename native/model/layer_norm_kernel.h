// LayerNorm through the CUDA kernels of native/kernels/layer_norm.cu (CUDA's default; experiment
// "aten-layernorm" turns them off), alone or with the residual add before it, with their own backward.
// Where they are not built in, or for tensors they do not take (CPU, fp64, an empty batch, γ/β not
// fp32 on the input's device), nullopt: the caller computes the composite form.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <utility>

namespace clip::model {

/**
 * LayerNorm over the last dimension (γ, β fp32) in fp32 arithmetic, the output in `out_type`: x's
 * type, or fp16/bf16 from an fp32 x.
 */
std::optional<at::Tensor> layer_norm_by_kernel(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps, at::ScalarType out_type);

/**
 * The residual add before a LayerNorm joined to it: {s, y} = {x + r, LayerNorm(x + r)}, s in x's type
 * (the sum's type by promotion: r is x's type, or out_type with an fp32 x), y in `out_type` as above.
 */
std::optional<std::pair<at::Tensor, at::Tensor>> add_layer_norm_by_kernel(const at::Tensor& x, const at::Tensor& r, const at::Tensor& weight,
                                                                          const at::Tensor& bias, double eps, at::ScalarType out_type);

}  // namespace clip::model
