// How the column-sum kernels (LayerNorm's γ/β gradients, a product's bias gradient) split the rows:
// each block sums a chunk of rows into a partial sum per column, and the partial sums are added in
// chunk order afterwards — no atomics, so every run gives the same bits.
#pragma once
#include <cstdint>

namespace clip::kernels {

constexpr int64_t kChunkRows = 256;  // rows summed by one block, at least
constexpr int64_t kMaxChunks = 65535;  // gridDim.y's limit

/** Rows per chunk: kChunkRows, or more where the chunks would not fit the grid. */
__host__ __device__ inline int64_t chunk_rows_for(int64_t rows) {
  const int64_t least = (rows + kMaxChunks - 1) / kMaxChunks;
  return least > kChunkRows ? least : kChunkRows;
}

__host__ __device__ inline int64_t chunks_for(int64_t rows) {
  const int64_t per_chunk = chunk_rows_for(rows);
  return (rows + per_chunk - 1) / per_chunk;
}

}  // namespace clip::kernels
