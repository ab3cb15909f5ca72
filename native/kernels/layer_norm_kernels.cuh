// LayerNorm over the last dimension, fp32 arithmetic whatever the storage type: the kernels behind
// native/kernels/layer_norm.cu. Kept apart from the launches so that tools can include them alone.
//
// Forward: one warp per row, three passes over the row (mean, then the centred sum of squares, then
// the output: the row stays in cache between them); the mean and 1/σ are kept for the backward. The
// residual add before a LayerNorm can join its first pass (and the add's gradient its backward).
// Backward: one warp per row for the input's gradient; the γ/β gradients are column sums, taken by
// blocks of 64 columns × chunk_rows rows into per-chunk partial sums, then summed over the chunks in
// order. Nothing is summed with atomics, so every run gives the same bits.
#pragma once
#include "kernels/row_chunks.cuh"
#include "kernels/storage.cuh"

namespace clip::kernels::layer_norm {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;            // warps per block in the row kernels
constexpr int kColumnsPerTile = 2 * kWarp;  // two adjacent columns per lane in the parameter kernel

__device__ inline float warp_sum(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// X: the input's storage type (and its gradient's), Y: the output's (and its gradient's): the same, or
// fp32 in and autocast's type out where a matrix product takes the output. R: a residual branch added
// to the input first (r non-null): s = x + r, rounded to X as the stream holds it, is written and
// normalised, in the same pass over the row that reads x and r; R is X, or Y with an fp32 X (the text
// tower's fp32 stream plus a product's output under autocast).
// blockDim (32, kRowsPerBlock); row = blockIdx.x * kRowsPerBlock + threadIdx.y. V values per load:
// 16 bytes of the widest type when the rows allow it, else 1.
// x and s are not __restrict__: the later passes read through one pointer that is x or s, and a read
// of s must not go through the read-only cache, which does not see this kernel's own writes.
template <typename X, typename R, typename Y, int V>
__global__ void forward(const X* x, const R* __restrict__ r, X* s, const float* __restrict__ gamma,
                        const float* __restrict__ beta, Y* __restrict__ y, float* __restrict__ mean_out, float* __restrict__ rstd_out, int64_t rows,
                        int cols, float eps) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.y;
  if (row >= rows) return;  // the whole warp leaves together: one row per warp
  const int lane = threadIdx.x;
  const X* in = x + row * cols;
  float sum = 0.0f;
  if (r != nullptr) {
    const R* branch = r + row * cols;
    X* joined = s + row * cols;
    for (int c = lane * V; c < cols; c += kWarp * V) {
      float v[V], w[V];
      load_values<X, V>(in + c, v);
      load_values<R, V>(branch + c, w);
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] = Storage<X>::load(Storage<X>::store(v[j] + w[j]));
      store_values<X, V>(joined + c, v);
#pragma unroll
      for (int j = 0; j < V; ++j) sum += v[j];
    }
    in = joined;  // each lane reads back only what it wrote
  } else {
    for (int c = lane * V; c < cols; c += kWarp * V) {
      float v[V];
      load_values<X, V>(in + c, v);
#pragma unroll
      for (int j = 0; j < V; ++j) sum += v[j];
    }
  }
  const float mean = warp_sum(sum) / static_cast<float>(cols);
  float squares = 0.0f;
  for (int c = lane * V; c < cols; c += kWarp * V) {
    float v[V];
    load_values<X, V>(in + c, v);
#pragma unroll
    for (int j = 0; j < V; ++j) squares += (v[j] - mean) * (v[j] - mean);
  }
  // Biased variance, as torch.nn.LayerNorm.
  const float rstd = rsqrtf(warp_sum(squares) / static_cast<float>(cols) + eps);
  Y* out = y + row * cols;
  for (int c = lane * V; c < cols; c += kWarp * V) {
    float v[V];
    load_values<X, V>(in + c, v);
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = (v[j] - mean) * rstd * gamma[c + j] + beta[c + j];
    store_values<Y, V>(out + c, v);
  }
  if (lane == 0) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
}

// dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy · γ, x̂ = (x − μ) · rstd. Same layout as forward.
// With a residual (forward's r): x here is the sum s, ds (non-null) the gradient s has from its other
// uses, and the total ds + dx goes to dx (X, may be null) and dr (R, may be null) — the gradients of the
// two addends — each rounded once.
template <typename X, typename R, typename Y, int V>
__global__ void backward_input(const Y* __restrict__ dy, const X* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ rstd,
                               const float* __restrict__ gamma, const X* __restrict__ ds, X* __restrict__ dx, R* __restrict__ dr, int64_t rows,
                               int cols) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.y;
  if (row >= rows) return;
  const int lane = threadIdx.x;
  const float mu = mean[row], r = rstd[row];
  const Y* grad = dy + row * cols;
  const X* in = x + row * cols;
  float sum_g = 0.0f, sum_gx = 0.0f;
  for (int c = lane * V; c < cols; c += kWarp * V) {
    float g[V], v[V];
    load_values<Y, V>(grad + c, g);
    load_values<X, V>(in + c, v);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float gj = g[j] * gamma[c + j];
      sum_g += gj;
      sum_gx += gj * (v[j] - mu) * r;
    }
  }
  const float mean_g = warp_sum(sum_g) / static_cast<float>(cols);
  const float mean_gx = warp_sum(sum_gx) / static_cast<float>(cols);
  const int64_t at = row * cols;
  for (int c = lane * V; c < cols; c += kWarp * V) {
    float g[V], v[V];
    load_values<Y, V>(grad + c, g);
    load_values<X, V>(in + c, v);
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = r * (g[j] * gamma[c + j] - mean_g - (v[j] - mu) * r * mean_gx);
    if (ds != nullptr) {
      float other[V];
      load_values<X, V>(ds + at + c, other);
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] += other[j];
    }
    if (dx != nullptr) store_values<X, V>(dx + at + c, v);
    if (dr != nullptr) store_values<R, V>(dr + at + c, v);
  }
}

// Partial sums of dγ = Σ dy · x̂ and dβ = Σ dy over one chunk of rows (chunk_rows_for): blockIdx.x picks
// 64 columns, blockIdx.y the chunk; blockDim (32, kRowsPerBlock). Writes partial[0][chunk][col] (dγ) and
// partial[1][chunk][col] (dβ), partial being [2][chunks][cols].
template <typename X, typename Y>
__global__ void backward_parameters(const Y* __restrict__ dy, const X* __restrict__ x, const float* __restrict__ mean,
                                    const float* __restrict__ rstd, float* __restrict__ partial, int64_t rows, int cols) {
  const int c0 = blockIdx.x * kColumnsPerTile + 2 * threadIdx.x;
  const int64_t per_chunk = chunk_rows_for(rows);
  const int64_t first = static_cast<int64_t>(blockIdx.y) * per_chunk;
  const int64_t end = first + per_chunk < rows ? first + per_chunk : rows;
  float sums[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // dγ, dβ of column c0, then of c0 + 1
  for (int64_t row = first + threadIdx.y; row < end; row += kRowsPerBlock) {
    const float mu = mean[row], r = rstd[row];
    const Y* grad = dy + row * cols;
    const X* in = x + row * cols;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      if (c0 + k < cols) {
        const float g = Storage<Y>::load(grad[c0 + k]);
        sums[2 * k] += g * (Storage<X>::load(in[c0 + k]) - mu) * r;
        sums[2 * k + 1] += g;
      }
    }
  }
  __shared__ float block_sums[kRowsPerBlock][kWarp][4];
#pragma unroll
  for (int k = 0; k < 4; ++k) block_sums[threadIdx.y][threadIdx.x][k] = sums[k];
  __syncthreads();
  if (threadIdx.y != 0) return;
  const int64_t chunks = gridDim.y;
  for (int k = 0; k < 2; ++k) {
    if (c0 + k >= cols) break;
    float dgamma = 0.0f, dbeta = 0.0f;
    for (int w = 0; w < kRowsPerBlock; ++w) {
      dgamma += block_sums[w][threadIdx.x][2 * k];
      dbeta += block_sums[w][threadIdx.x][2 * k + 1];
    }
    partial[static_cast<int64_t>(blockIdx.y) * cols + c0 + k] = dgamma;
    partial[(chunks + blockIdx.y) * cols + c0 + k] = dbeta;
  }
}

// dγ[c], dβ[c]: the chunks' partial sums in chunk order. One thread per column.
__global__ void sum_chunks(const float* __restrict__ partial, float* __restrict__ dgamma, float* __restrict__ dbeta, int64_t chunks, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float g = 0.0f, b = 0.0f;
  for (int64_t k = 0; k < chunks; ++k) {
    g += partial[k * cols + c];
    b += partial[(chunks + k) * cols + c];
  }
  dgamma[c] = g;
  dbeta[c] = b;
}

}  // namespace clip::kernels::layer_norm
