// LayerNorm over the last dimension as CUDA kernels (CUDA's default LayerNorm): the input and
// output in the activations' storage types (both fp32, fp16 or bf16, or fp32 in and fp16/bf16 out),
// γ, β, the statistics and every sum in fp32 — the numbers of the reference's LayerNorm, which casts a
// half input to fp32, normalises and casts back, without the casts of the activation (forward and
// backward) around it, and with the γ/β gradients in one pass. Plain CUDA with no LibTorch headers;
// native/model/layer_norm_kernel.cc wraps it.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace clip::kernels {

/**
 * y = (x − μ) / √(σ² + eps) · γ + β per row of `cols` values; writes μ and 1/√(σ² + eps) per row.
 * x_type ≠ y_type only as fp32 in, fp16/bf16 out; other combinations are cudaErrorInvalidValue.
 */
cudaError_t layer_norm_forward(Dtype x_type, Dtype y_type, const void* x, const float* gamma, const float* beta, void* y, float* mean, float* rstd, int64_t rows,
                               int64_t cols, float eps, cudaStream_t stream);

/**
 * The residual add before a LayerNorm joined to it: s = x + r (written, rounded to x's type) and
 * y = LayerNorm(s). r_type is x_type, or y_type with an fp32 x.
 */
cudaError_t add_layer_norm_forward(Dtype x_type, Dtype r_type, Dtype y_type, const void* x, const void* r, void* s, const float* gamma, const float* beta,
                                   void* y, float* mean, float* rstd, int64_t rows, int64_t cols, float eps, cudaStream_t stream);

/** fp32 values the backward's workspace must hold for rows × cols. */
int64_t layer_norm_workspace_size(int64_t rows, int64_t cols);

/**
 * dx (skipped when null) from dy, x and the forward's statistics; dγ and dβ (skipped when both are
 * null, else both given) through `workspace` (layer_norm_workspace_size floats). dy is of y_type,
 * dx of x_type.
 */
cudaError_t layer_norm_backward(Dtype x_type, Dtype y_type, const void* dy, const void* x, const float* mean, const float* rstd, const float* gamma, void* dx,
                                float* dgamma, float* dbeta, float* workspace, int64_t rows, int64_t cols, cudaStream_t stream);

/**
 * add_layer_norm_forward's backward: dy (y_type) and ds (x_type; null when s has no other use) give
 * the sum's gradient ds + ∂y/∂s · dy, written to dx (x_type) and dr (r_type), either null when not
 * wanted; dγ and dβ as layer_norm_backward's.
 */
cudaError_t add_layer_norm_backward(Dtype x_type, Dtype r_type, Dtype y_type, const void* dy, const void* ds, const void* s, const float* mean,
                                    const float* rstd, const float* gamma, void* dx, void* dr, float* dgamma, float* dbeta, float* workspace,
                                    int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace clip::kernels
