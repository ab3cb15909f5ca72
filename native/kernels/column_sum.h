// Column sums of a row-major matrix as CUDA kernels (a product's bias gradient in the own backward of
// native/model/own_linear_backward.cc, CUDA's default): fp32 sums in a fixed order whatever the storage
// type, the result stored in out_type. Plain CUDA with no LibTorch headers.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace clip::kernels {

/** fp32 values column_sum's workspace must hold for rows × cols. */
int64_t column_sum_workspace_size(int64_t rows, int64_t cols);

/** out[c] = Σ_r x[r, c] for x [rows, cols] row-major of x_type; out holds cols values of out_type. */
cudaError_t column_sum(Dtype x_type, Dtype out_type, const void* x, void* out, float* workspace, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace clip::kernels
