// A matrix product with its backward written out (CUDA's default; experiment "autograd-linear" turns
// it off, "own-linear-backward" forces it on the CPU): the forward is autocast's (the inputs cast to
// its type, one addmm with the bias and alpha), the backward computes the bias gradient with an own
// column-sum kernel on CUDA (ATen's reduction ran at about a third of memory speed) and applies alpha
// in the two products' epilogue instead of a separate pass each.
#pragma once
#include <ATen/ATen.h>

namespace clip::model {

/**
 * alpha · x Wᵀ + b over x's last dimension (b may be undefined), under autocast as at::linear /
 * at::addmm are: the same forward, gradients back in each input's type.
 */
at::Tensor linear_with_own_backward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double alpha = 1.0);

}  // namespace clip::model
