// relu(x + bias (+ residual)) of a channels-last activation as one CUDA kernel (CUDA's default,
// "bias-relu-kernel": a folded BatchNorm's shift, the residual add and the ReLU after a ResNet
// convolution). ATen adds a convolution's bias in a separate pass whose broadcast keeps it off the
// vectorised path, then the residual, then the ReLU; this reads each input once, 16 bytes a load.
// Plain CUDA with no LibTorch headers; native/model/bias_relu_kernel.cc wraps it.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace clip::kernels {

/**
 * y = relu(x + bias[c] + residual) over x [rows, cols] row-major of dtype (residual the same, or
 * null), bias cols fp32 values; queued on `stream`; returns the launch's error.
 */
cudaError_t bias_relu_forward(Dtype dtype, const void* x, const float* bias, const void* residual, void* y, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace clip::kernels
