// QuickGELU through the CUDA kernels of native/kernels/ (experiment "quick-gelu-kernel"), with its
// own backward. Where they are not built in, or for tensors they do not take (CPU, fp64), the
// composite form that the reference computes.
#pragma once
#include <ATen/ATen.h>

namespace clip::model {

/** Whether this build has the CUDA kernels (a CUDA LibTorch, nvcc at build time). */
bool quick_gelu_kernels_built();

/** x · sigmoid(1.702 x); one kernel each way on CUDA fp32/fp16/bf16 tensors when built. */
at::Tensor quick_gelu_by_kernel(const at::Tensor& x);

}  // namespace clip::model
