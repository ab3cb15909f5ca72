#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "kernels/dispatch.cuh"
#include "kernels/quick_gelu.h"
#include "kernels/storage.cuh"

namespace clip::kernels {
namespace {

constexpr float kAlpha = 1.702f;
constexpr int kThreads = 256;

__device__ inline float sigmoid_of_scaled(float v) { return 1.0f / (1.0f + expf(-kAlpha * v)); }

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = Storage<T>::load(x[i]);
    y[i] = Storage<T>::store(v * sigmoid_of_scaled(v));
  }
}

template <typename T>
__global__ void backward_kernel(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx, int64_t n) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = Storage<T>::load(x[i]);
    const float s = sigmoid_of_scaled(v);
    dx[i] = Storage<T>::store(Storage<T>::load(dy[i]) * (s + kAlpha * v * s * (1.0f - s)));
  }
}

// The same per-element work on 16-byte vectors (4 fp32 or 8 fp16/bf16 values a load): wide loads are
// what it takes to approach the memory bandwidth these kernels are bound by.
template <typename T>
__global__ void forward_vector_kernel(const uint4* __restrict__ x, uint4* __restrict__ y, int64_t vectors) {
  constexpr int kLanes = kLanesOf16Bytes<T>;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors; i += stride) {
    const uint4 in = x[i];
    uint4 out;
    const T* a = reinterpret_cast<const T*>(&in);
    T* b = reinterpret_cast<T*>(&out);
#pragma unroll
    for (int j = 0; j < kLanes; ++j) {
      const float v = Storage<T>::load(a[j]);
      b[j] = Storage<T>::store(v * sigmoid_of_scaled(v));
    }
    y[i] = out;
  }
}

template <typename T>
__global__ void backward_vector_kernel(const uint4* __restrict__ dy, const uint4* __restrict__ x, uint4* __restrict__ dx, int64_t vectors) {
  constexpr int kLanes = kLanesOf16Bytes<T>;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors; i += stride) {
    const uint4 grad = dy[i];
    const uint4 in = x[i];
    uint4 out;
    const T* g = reinterpret_cast<const T*>(&grad);
    const T* a = reinterpret_cast<const T*>(&in);
    T* b = reinterpret_cast<T*>(&out);
#pragma unroll
    for (int j = 0; j < kLanes; ++j) {
      const float v = Storage<T>::load(a[j]);
      const float s = sigmoid_of_scaled(v);
      b[j] = Storage<T>::store(Storage<T>::load(g[j]) * (s + kAlpha * v * s * (1.0f - s)));
    }
    dx[i] = out;
  }
}

template <typename T>
bool vectorizable(int64_t n, std::initializer_list<const void*> pointers) {
  return n % kLanesOf16Bytes<T> == 0 && aligned_16(pointers);
}

unsigned blocks_for(int64_t n) {
  // Enough blocks to fill the device several times over; the grid-stride loops take the rest.
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 16)));
}

template <typename T>
cudaError_t launch_forward(const void* x, void* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (vectorizable<T>(n, {x, y})) {
    const int64_t vectors = n / kLanesOf16Bytes<T>;
    forward_vector_kernel<T><<<blocks_for(vectors), kThreads, 0, stream>>>(static_cast<const uint4*>(x), static_cast<uint4*>(y), vectors);
  } else {
    forward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const void* dy, const void* x, void* dx, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (vectorizable<T>(n, {dy, x, dx})) {
    const int64_t vectors = n / kLanesOf16Bytes<T>;
    backward_vector_kernel<T><<<blocks_for(vectors), kThreads, 0, stream>>>(static_cast<const uint4*>(dy), static_cast<const uint4*>(x),
                                                                             static_cast<uint4*>(dx), vectors);
  } else {
    backward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const T*>(dy), static_cast<const T*>(x), static_cast<T*>(dx), n);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t quick_gelu_forward(Dtype dtype, const void* x, void* y, int64_t n, cudaStream_t stream) {
  return with_type(dtype, [&](auto t) { return launch_forward<typename decltype(t)::type>(x, y, n, stream); });
}

cudaError_t quick_gelu_backward(Dtype dtype, const void* dy, const void* x, void* dx, int64_t n, cudaStream_t stream) {
  return with_type(dtype, [&](auto t) { return launch_backward<typename decltype(t)::type>(dy, x, dx, n, stream); });
}

}  // namespace clip::kernels
