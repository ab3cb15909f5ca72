#include "kernels/layer_norm.h"

#include "kernels/dispatch.cuh"
#include "kernels/layer_norm_kernels.cuh"

namespace clip::kernels {
namespace {

using namespace layer_norm;

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

template <typename X, typename R, typename Y>
constexpr int kLanes = kLanesOfPair<X, R> < kLanesOfPair<X, Y> ? kLanesOfPair<X, R> : kLanesOfPair<X, Y>;

// The storage types taken: the output and the residual are the input's type, or the same half type
// with an fp32 input (autocast's products reading the fp32 text stream).
template <typename X, typename R, typename Y>
constexpr bool kTaken = (std::is_same_v<Y, X> || std::is_same_v<X, float>) && (std::is_same_v<R, X> || (std::is_same_v<X, float> && std::is_same_v<R, Y>));

template <typename X, typename R, typename Y>
cudaError_t launch_forward(const void* x, const void* r, void* s, const float* gamma, const float* beta, void* y, float* mean, float* rstd,
                           int64_t rows, int cols, float eps, cudaStream_t stream) {
  constexpr int V = kLanes<X, R, Y>;
  const dim3 block(kWarp, kRowsPerBlock);
  const auto* in = static_cast<const X*>(x);
  const auto* branch = static_cast<const R*>(r);
  auto* joined = static_cast<X*>(s);
  auto* out = static_cast<Y*>(y);
  if (cols % V == 0 && aligned_16({x, r, s, y})) {
    forward<X, R, Y, V><<<row_blocks(rows), block, 0, stream>>>(in, branch, joined, gamma, beta, out, mean, rstd, rows, cols, eps);
  } else {
    forward<X, R, Y, 1><<<row_blocks(rows), block, 0, stream>>>(in, branch, joined, gamma, beta, out, mean, rstd, rows, cols, eps);
  }
  return cudaGetLastError();
}

template <typename X, typename R, typename Y>
cudaError_t launch_backward(const void* dy, const void* ds, const void* x, const float* mean, const float* rstd, const float* gamma, void* dx, void* dr,
                            float* dgamma, float* dbeta, float* workspace, int64_t rows, int cols, cudaStream_t stream) {
  constexpr int V = kLanes<X, R, Y>;
  const dim3 block(kWarp, kRowsPerBlock);
  const auto* grad = static_cast<const Y*>(dy);
  const auto* in = static_cast<const X*>(x);
  if (dx != nullptr || dr != nullptr) {
    const auto* other = static_cast<const X*>(ds);
    auto* out = static_cast<X*>(dx);
    auto* out_branch = static_cast<R*>(dr);
    if (cols % V == 0 && aligned_16({dy, ds, x, dx, dr})) {
      backward_input<X, R, Y, V><<<row_blocks(rows), block, 0, stream>>>(grad, in, mean, rstd, gamma, other, out, out_branch, rows, cols);
    } else {
      backward_input<X, R, Y, 1><<<row_blocks(rows), block, 0, stream>>>(grad, in, mean, rstd, gamma, other, out, out_branch, rows, cols);
    }
    if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess) return error;
  }
  if (dgamma != nullptr) {
    const int64_t chunks = chunks_for(rows);
    const dim3 tiles(static_cast<unsigned>((cols + kColumnsPerTile - 1) / kColumnsPerTile), static_cast<unsigned>(chunks));
    backward_parameters<X, Y><<<tiles, block, 0, stream>>>(grad, in, mean, rstd, workspace, rows, cols);
    if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess) return error;
    constexpr int kThreads = 256;
    sum_chunks<<<static_cast<unsigned>((cols + kThreads - 1) / kThreads), kThreads, 0, stream>>>(workspace, dgamma, dbeta, chunks, cols);
  }
  return cudaGetLastError();
}

// f(Tag<X>{}, Tag<R>{}, Tag<Y>{}) for a combination the kernels take, else cudaErrorInvalidValue.
template <typename F>
cudaError_t with_types(Dtype x_type, Dtype r_type, Dtype y_type, F&& f) {
  return with_type(x_type, [&](auto xt) {
    return with_type(r_type, [&](auto rt) {
      return with_type(y_type, [&](auto yt) {
        using X = typename decltype(xt)::type;
        using R = typename decltype(rt)::type;
        using Y = typename decltype(yt)::type;
        if constexpr (kTaken<X, R, Y>) {
          return f(xt, rt, yt);
        } else {
          return cudaErrorInvalidValue;
        }
      });
    });
  });
}

}  // namespace

cudaError_t layer_norm_forward(Dtype x_type, Dtype y_type, const void* x, const float* gamma, const float* beta, void* y, float* mean, float* rstd,
                               int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  return add_layer_norm_forward(x_type, x_type, y_type, x, nullptr, nullptr, gamma, beta, y, mean, rstd, rows, cols, eps, stream);
}

cudaError_t add_layer_norm_forward(Dtype x_type, Dtype r_type, Dtype y_type, const void* x, const void* r, void* s, const float* gamma, const float* beta,
                                   void* y, float* mean, float* rstd, int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  return with_types(x_type, r_type, y_type, [&](auto xt, auto rt, auto yt) {
    using X = typename decltype(xt)::type;
    using R = typename decltype(rt)::type;
    using Y = typename decltype(yt)::type;
    return launch_forward<X, R, Y>(x, r, s, gamma, beta, y, mean, rstd, rows, static_cast<int>(cols), eps, stream);
  });
}

int64_t layer_norm_workspace_size(int64_t rows, int64_t cols) { return 2 * chunks_for(rows) * cols; }

cudaError_t layer_norm_backward(Dtype x_type, Dtype y_type, const void* dy, const void* x, const float* mean, const float* rstd, const float* gamma,
                                void* dx, float* dgamma, float* dbeta, float* workspace, int64_t rows, int64_t cols, cudaStream_t stream) {
  return add_layer_norm_backward(x_type, x_type, y_type, dy, nullptr, x, mean, rstd, gamma, dx, nullptr, dgamma, dbeta, workspace, rows, cols, stream);
}

cudaError_t add_layer_norm_backward(Dtype x_type, Dtype r_type, Dtype y_type, const void* dy, const void* ds, const void* s, const float* mean,
                                    const float* rstd, const float* gamma, void* dx, void* dr, float* dgamma, float* dbeta, float* workspace,
                                    int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  return with_types(x_type, r_type, y_type, [&](auto xt, auto rt, auto yt) {
    using X = typename decltype(xt)::type;
    using R = typename decltype(rt)::type;
    using Y = typename decltype(yt)::type;
    return launch_backward<X, R, Y>(dy, ds, s, mean, rstd, gamma, dx, dr, dgamma, dbeta, workspace, rows, static_cast<int>(cols), stream);
  });
}

}  // namespace clip::kernels
