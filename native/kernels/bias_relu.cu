#include "kernels/bias_relu.h"

#include "kernels/bias_relu_kernels.cuh"
#include "kernels/dispatch.cuh"

namespace clip::kernels {
namespace {

using namespace bias_relus;

template <typename T, int V>
cudaError_t launch(const void* x, const float* bias, const void* residual, void* y, int64_t rows, int cols, cudaStream_t stream) {
  const int64_t groups = rows * cols / V;
  // Enough blocks to fill any GPU; the threads stride over the rest.
  const unsigned blocks = static_cast<unsigned>(groups / kThreads + 1 < 65536 ? groups / kThreads + 1 : 65536);
  const auto* in = static_cast<const T*>(x);
  auto* out = static_cast<T*>(y);
  if (residual != nullptr) {
    forward<T, V, true><<<blocks, kThreads, 0, stream>>>(in, bias, static_cast<const T*>(residual), out, groups, cols);
  } else {
    forward<T, V, false><<<blocks, kThreads, 0, stream>>>(in, bias, nullptr, out, groups, cols);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_any(const void* x, const float* bias, const void* residual, void* y, int64_t rows, int cols, cudaStream_t stream) {
  constexpr int V = kLanesOf16Bytes<T>;
  if (cols % V == 0 && aligned_16({x, residual, y})) return launch<T, V>(x, bias, residual, y, rows, cols, stream);
  return launch<T, 1>(x, bias, residual, y, rows, cols, stream);
}

}  // namespace

cudaError_t bias_relu_forward(Dtype dtype, const void* x, const float* bias, const void* residual, void* y, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const int width = static_cast<int>(cols);
  return with_type(dtype, [&](auto t) { return launch_any<typename decltype(t)::type>(x, bias, residual, y, rows, width, stream); });
}

}  // namespace clip::kernels
