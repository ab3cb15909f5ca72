// Column sums of a row-major [rows, cols] matrix in fp32 whatever its storage type: a product's bias
// gradient, Σ over rows of the output's gradient (native/kernels/column_sum.cu). Kept apart from the
// launches so that tools can include them alone.
//
// Blocks of 32 lanes × 8 warps: a lane owns V adjacent columns (16 bytes of them when the rows allow),
// the warps take the chunk's rows in turn; the block's eight partial sums per column are added in warp
// order and written per chunk, and sum_chunks adds the chunks in order.
#pragma once
#include "kernels/row_chunks.cuh"
#include "kernels/storage.cuh"

namespace clip::kernels::column_sums {

constexpr int kWarp = 32;
constexpr int kWarps = 8;

// blockIdx.x: a tile of 32 · V columns; blockIdx.y: the chunk of rows. partial is [chunks][cols].
template <typename T, int V>
__global__ void partial_sums(const T* __restrict__ x, float* __restrict__ partial, int64_t rows, int cols) {
  const int c0 = (blockIdx.x * kWarp + threadIdx.x) * V;
  const int64_t per_chunk = chunk_rows_for(rows);
  const int64_t first = static_cast<int64_t>(blockIdx.y) * per_chunk;
  const int64_t end = first + per_chunk < rows ? first + per_chunk : rows;
  float sums[V];
#pragma unroll
  for (int j = 0; j < V; ++j) sums[j] = 0.0f;
  if (c0 < cols) {
    for (int64_t row = first + threadIdx.y; row < end; row += kWarps) {
      float v[V];
      load_values<T, V>(x + row * cols + c0, v);
#pragma unroll
      for (int j = 0; j < V; ++j) sums[j] += v[j];
    }
  }
  __shared__ float block_sums[kWarps][kWarp][V];
#pragma unroll
  for (int j = 0; j < V; ++j) block_sums[threadIdx.y][threadIdx.x][j] = sums[j];
  __syncthreads();
  if (threadIdx.y != 0 || c0 >= cols) return;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w) total += block_sums[w][threadIdx.x][j];
    partial[static_cast<int64_t>(blockIdx.y) * cols + c0 + j] = total;
  }
}

// out[c] = Σ over chunks of partial[chunk][c], in chunk order, stored as O. One thread per column.
template <typename O>
__global__ void sum_chunks(const float* __restrict__ partial, O* __restrict__ out, int64_t chunks, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float total = 0.0f;
  for (int64_t k = 0; k < chunks; ++k) total += partial[k * cols + c];
  out[c] = Storage<O>::store(total);
}

}  // namespace clip::kernels::column_sums
