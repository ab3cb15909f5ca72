// Σ over the rows of a [rows, cols] matrix (a bias gradient), summed in fp32: by the column-sum
// kernel of native/kernels/column_sum.cu on CUDA where it is built (ATen's reduction ran at about a
// third of memory speed), else ATen's.
#pragma once
#include <ATen/ATen.h>

namespace clip::model {

/** The column sums of `rows` (2-D), stored in `out_type`. */
at::Tensor column_sums(const at::Tensor& rows, at::ScalarType out_type);

}  // namespace clip::model
