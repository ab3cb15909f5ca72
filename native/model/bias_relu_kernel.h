// relu(x + bias (+ residual)) of a channels-last activation by the CUDA kernel of
// native/kernels/bias_relu.cu (CUDA's default, "bias-relu-kernel": a ResNet convolution's folded BatchNorm
// shift, its residual and its ReLU in one pass), with its own backward: the ReLU's mask by ATen, the
// bias gradient by the column-sum kernel. Where the kernels are not built in, or for tensors they do
// not take (CPU, not channels-last, bias not fp32 beside x), nullopt: the caller computes the
// composite form.
#pragma once
#include <ATen/ATen.h>

#include <optional>

namespace clip::model {

/** relu(x + bias.view(1, C, 1, 1) + residual) for x [N, C, H, W] channels-last; residual may be undefined. */
std::optional<at::Tensor> bias_relu_by_kernel(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& residual);

}  // namespace clip::model
