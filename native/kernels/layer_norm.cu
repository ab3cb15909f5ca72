#include "kernels/layer_norm.h"

#include "kernels/layer_norm_kernels.cuh"

namespace clip::kernels {
namespace {

using namespace layer_norm;

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

int64_t chunks_of(int64_t rows) { return (rows + kChunkRows - 1) / kChunkRows; }

template <typename X, typename Y>
cudaError_t launch_forward(const void* x, const float* gamma, const float* beta, void* y, float* mean, float* rstd, int64_t rows, int cols,
                           float eps, cudaStream_t stream) {
  constexpr int V = kLanesOfPair<X, Y>;
  const dim3 block(kWarp, kRowsPerBlock);
  const auto* in = static_cast<const X*>(x);
  auto* out = static_cast<Y*>(y);
  if (cols % V == 0 && aligned_16({x, y})) {
    forward<X, Y, V><<<row_blocks(rows), block, 0, stream>>>(in, gamma, beta, out, mean, rstd, rows, cols, eps);
  } else {
    forward<X, Y, 1><<<row_blocks(rows), block, 0, stream>>>(in, gamma, beta, out, mean, rstd, rows, cols, eps);
  }
  return cudaGetLastError();
}

template <typename X, typename Y>
cudaError_t launch_backward(const void* dy, const void* x, const float* mean, const float* rstd, const float* gamma, void* dx, float* dgamma,
                            float* dbeta, float* workspace, int64_t rows, int cols, cudaStream_t stream) {
  constexpr int V = kLanesOfPair<X, Y>;
  const dim3 block(kWarp, kRowsPerBlock);
  const auto* grad = static_cast<const Y*>(dy);
  const auto* in = static_cast<const X*>(x);
  if (dx != nullptr) {
    auto* out = static_cast<X*>(dx);
    if (cols % V == 0 && aligned_16({dy, x, dx})) {
      backward_input<X, Y, V><<<row_blocks(rows), block, 0, stream>>>(grad, in, mean, rstd, gamma, out, rows, cols);
    } else {
      backward_input<X, Y, 1><<<row_blocks(rows), block, 0, stream>>>(grad, in, mean, rstd, gamma, out, rows, cols);
    }
    if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess) return error;
  }
  if (dgamma != nullptr) {
    const int64_t chunks = chunks_of(rows);
    const dim3 tiles(static_cast<unsigned>((cols + kColumnsPerTile - 1) / kColumnsPerTile), static_cast<unsigned>(chunks));
    backward_parameters<X, Y><<<tiles, block, 0, stream>>>(grad, in, mean, rstd, workspace, rows, cols);
    if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess) return error;
    constexpr int kThreads = 256;
    sum_chunks<<<static_cast<unsigned>((cols + kThreads - 1) / kThreads), kThreads, 0, stream>>>(workspace, dgamma, dbeta, chunks, cols);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t layer_norm_forward(Dtype x_type, Dtype y_type, const void* x, const float* gamma, const float* beta, void* y, float* mean, float* rstd,
                               int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const int width = static_cast<int>(cols);
  if (x_type == y_type) {
    switch (x_type) {
      case Dtype::kHalf: return launch_forward<__half, __half>(x, gamma, beta, y, mean, rstd, rows, width, eps, stream);
      case Dtype::kBFloat16: return launch_forward<__nv_bfloat16, __nv_bfloat16>(x, gamma, beta, y, mean, rstd, rows, width, eps, stream);
      default: return launch_forward<float, float>(x, gamma, beta, y, mean, rstd, rows, width, eps, stream);
    }
  }
  if (x_type != Dtype::kFloat) return cudaErrorInvalidValue;
  if (y_type == Dtype::kHalf) return launch_forward<float, __half>(x, gamma, beta, y, mean, rstd, rows, width, eps, stream);
  return launch_forward<float, __nv_bfloat16>(x, gamma, beta, y, mean, rstd, rows, width, eps, stream);
}

int64_t layer_norm_workspace_size(int64_t rows, int64_t cols) { return 2 * chunks_of(rows) * cols; }

cudaError_t layer_norm_backward(Dtype x_type, Dtype y_type, const void* dy, const void* x, const float* mean, const float* rstd, const float* gamma,
                                void* dx, float* dgamma, float* dbeta, float* workspace, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const int width = static_cast<int>(cols);
  if (x_type == y_type) {
    switch (x_type) {
      case Dtype::kHalf: return launch_backward<__half, __half>(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, workspace, rows, width, stream);
      case Dtype::kBFloat16:
        return launch_backward<__nv_bfloat16, __nv_bfloat16>(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, workspace, rows, width, stream);
      default: return launch_backward<float, float>(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, workspace, rows, width, stream);
    }
  }
  if (x_type != Dtype::kFloat) return cudaErrorInvalidValue;
  if (y_type == Dtype::kHalf) return launch_backward<float, __half>(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, workspace, rows, width, stream);
  return launch_backward<float, __nv_bfloat16>(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, workspace, rows, width, stream);
}

}  // namespace clip::kernels
