// relu(x + bias (+ residual)) over a row-major [rows, cols] matrix: a channels-last activation
// [N, C, H, W] is one, rows N·H·W and cols C, so the per-channel bias is a per-column one. fp32
// arithmetic, one rounding to the storage type. Kept apart from the launch so that tools can include
// the kernel alone (test/native/bias_relu_check.cc runs it on the CPU).
#pragma once
#include "kernels/storage.cuh"

namespace clip::kernels::bias_relus {

constexpr int kThreads = 256;

/** relu as PyTorch's: NaN stays NaN (the loss scaler must still see it), the rest max(v, 0). */
__device__ inline float relu(float v) { return v != v ? v : fmaxf(v, 0.0f); }

// A thread takes V consecutive values of a row at a time (cols % V == 0), striding over the grid;
// `groups` = rows · cols / V. residual may be null when kResidual is false.
template <typename T, int V, bool kResidual>
__global__ void forward(const T* __restrict__ x, const float* __restrict__ bias, const T* __restrict__ residual, T* __restrict__ y, int64_t groups,
                        int cols) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
    const int64_t at = g * V;
    const int c = static_cast<int>(at % cols);
    float v[V];
    load_values<T, V>(x + at, v);
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] += bias[c + j];
    if constexpr (kResidual) {
      float r[V];
      load_values<T, V>(residual + at, r);
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] += r[j];
    }
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = relu(v[j]);
    store_values<T, V>(y + at, v);
  }
}

}  // namespace clip::kernels::bias_relus
