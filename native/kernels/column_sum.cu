#include "kernels/column_sum.h"

#include "kernels/column_sum_kernels.cuh"
#include "kernels/dispatch.cuh"

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

}  // namespace

int64_t column_sum_workspace_size(int64_t rows, int64_t cols) { return chunks_for(rows) * cols; }

cudaError_t column_sum(Dtype x_type, Dtype out_type, const void* x, void* out, float* workspace, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  if (rows == 0) return cudaMemsetAsync(out, 0, static_cast<size_t>(cols) * (out_type == Dtype::kFloat ? 4 : 2), stream);
  const int width = static_cast<int>(cols);
  return with_type(x_type, [&](auto in) {
    return with_type(out_type, [&](auto to) {
      return launch<typename decltype(in)::type, typename decltype(to)::type>(x, out, workspace, rows, width, stream);
    });
  });
}

}  // namespace clip::kernels
