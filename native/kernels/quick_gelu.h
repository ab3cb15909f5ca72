// QuickGELU, x · sigmoid(1.702 x), as one CUDA kernel each way (native/kernels/quick_gelu.cu). The
// composite ATen form costs three passes over the MLP's widest activation forward and about five
// backward; these read and write it once, computing in fp32 whatever the storage type. Plain CUDA
// with no LibTorch headers, so nvcc compiles it quickly; native/model/quick_gelu_kernel.cc wraps it.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace clip::kernels {

/** y = x · sigmoid(1.702 x) over n contiguous elements, queued on `stream`; returns the launch's error. */
cudaError_t quick_gelu_forward(Dtype dtype, const void* x, void* y, int64_t n, cudaStream_t stream);

/** dx = dy · (s + 1.702 x s (1 − s)), s = sigmoid(1.702 x), over n contiguous elements. */
cudaError_t quick_gelu_backward(Dtype dtype, const void* dy, const void* x, void* dx, int64_t n, cudaStream_t stream);

}  // namespace clip::kernels
