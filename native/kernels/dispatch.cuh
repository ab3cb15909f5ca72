// From a Dtype to the storage type the kernels take (host code of the .cu files): f(Tag<T>{}).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/dtype.h"

namespace clip::kernels {

template <typename T>
struct Tag {
  using type = T;
};

/** f(Tag<T>{}) for the storage type `dtype` names: fp16, bf16, else fp32. */
template <typename F>
cudaError_t with_type(Dtype dtype, F&& f) {
  switch (dtype) {
    case Dtype::kHalf: return f(Tag<__half>{});
    case Dtype::kBFloat16: return f(Tag<__nv_bfloat16>{});
    default: return f(Tag<float>{});
  }
}

}  // namespace clip::kernels
