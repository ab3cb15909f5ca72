#include "kernels/column_sum.h"

#include "kernels/column_sum_kernels.cuh"

namespace clip::kernels {
namespace {

using namespace column_sums;

template <typename T, typename O>
cudaError_t launch(const void* x, void* out, float* workspace, int64_t rows, int cols, cudaStream_t stream) {
  constexpr int V = kLanesOf16Bytes<T>;
  const int64_t chunks = chunks_for(rows);
  const dim3 block(kWarp, kWarps);
  const auto* in = static_cast<const T*>(x);
  if (cols % V == 0 && aligned_16({x})) {
    const dim3 tiles(static_cast<unsigned>((cols / V + kWarp - 1) / kWarp), static_cast<unsigned>(chunks));
    partial_sums<T, V><<<tiles, block, 0, stream>>>(in, workspace, rows, cols);
  } else {
    const dim3 tiles(static_cast<unsigned>((cols + kWarp - 1) / kWarp), static_cast<unsigned>(chunks));
    partial_sums<T, 1><<<tiles, block, 0, stream>>>(in, workspace, rows, cols);
  }
  if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess) return error;
  constexpr int kThreads = 256;
  sum_chunks<O><<<static_cast<unsigned>((cols + kThreads - 1) / kThreads), kThreads, 0, stream>>>(workspace, static_cast<O*>(out), chunks, cols);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_to(Dtype out_type, const void* x, void* out, float* workspace, int64_t rows, int cols, cudaStream_t stream) {
  switch (out_type) {
    case Dtype::kHalf: return launch<T, __half>(x, out, workspace, rows, cols, stream);
    case Dtype::kBFloat16: return launch<T, __nv_bfloat16>(x, out, workspace, rows, cols, stream);
    default: return launch<T, float>(x, out, workspace, rows, cols, stream);
  }
}

}  // namespace

int64_t column_sum_workspace_size(int64_t rows, int64_t cols) { return chunks_for(rows) * cols; }

cudaError_t column_sum(Dtype x_type, Dtype out_type, const void* x, void* out, float* workspace, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  if (rows == 0) return cudaMemsetAsync(out, 0, static_cast<size_t>(cols) * (out_type == Dtype::kFloat ? 4 : 2), stream);
  const int width = static_cast<int>(cols);
  switch (x_type) {
    case Dtype::kHalf: return launch_to<__half>(out_type, x, out, workspace, rows, width, stream);
    case Dtype::kBFloat16: return launch_to<__nv_bfloat16>(out_type, x, out, workspace, rows, width, stream);
    default: return launch_to<float>(out_type, x, out, workspace, rows, width, stream);
  }
}

}  // namespace clip::kernels
