// What the autograd wrappers of native/kernels/ share: the kernels' storage type of a tensor, the
// stream to queue on, and a launch error as a C++ exception (which the binding turns into a JS Error).
// Only for builds with the kernels (CLIP_NATIVE_KERNELS, set by CMakeLists.txt with nvcc).
#pragma once
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>

#include <stdexcept>
#include <string>

#include "kernels/dtype.h"

namespace clip::model {

inline kernels::Dtype kernel_dtype(at::ScalarType t) {
  return t == at::kHalf ? kernels::Dtype::kHalf : t == at::kBFloat16 ? kernels::Dtype::kBFloat16 : kernels::Dtype::kFloat;
}

inline cudaStream_t stream_of(const at::Tensor& x) { return c10::cuda::getCurrentCUDAStream(x.device().index()).stream(); }

inline void check_launch(cudaError_t error, const char* what) {
  if (error != cudaSuccess) throw std::runtime_error(std::string(what) + " kernel: " + cudaGetErrorString(error));
}

}  // namespace clip::model
