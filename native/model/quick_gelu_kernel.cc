#include "model/quick_gelu_kernel.h"

#include <torch/autograd.h>

#include "model/layers.h"

// CMakeLists.txt defines CLIP_NATIVE_KERNELS when it compiles native/kernels/*.cu with nvcc.
#ifdef CLIP_NATIVE_KERNELS
#include <c10/cuda/CUDAGuard.h>

#include "kernels/quick_gelu.h"
#include "model/kernel_launch.h"
#endif

namespace clip::model {

#ifdef CLIP_NATIVE_KERNELS

namespace {

bool takes(const at::Tensor& x) {
  const auto t = x.scalar_type();
  return x.is_cuda() && (t == at::kFloat || t == at::kHalf || t == at::kBFloat16);
}

class QuickGeluKernel : public torch::autograd::Function<QuickGeluKernel> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input) {
    const at::Tensor x = input.contiguous();
    ctx->save_for_backward({x});
    const c10::cuda::CUDAGuard guard(x.device());
    at::Tensor y = at::empty_like(x);
    check_launch(kernels::quick_gelu_forward(kernel_dtype(x.scalar_type()), x.const_data_ptr(), y.mutable_data_ptr(), x.numel(),
                                             stream_of(x)),
                 "quick_gelu forward");
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor dy = grads[0].to(x.scalar_type()).contiguous();
    const c10::cuda::CUDAGuard guard(x.device());
    at::Tensor dx = at::empty_like(x);
    check_launch(kernels::quick_gelu_backward(kernel_dtype(x.scalar_type()), dy.const_data_ptr(), x.const_data_ptr(), dx.mutable_data_ptr(),
                                              x.numel(), stream_of(x)),
                 "quick_gelu backward");
    return {dx};
  }
};

}  // namespace

bool quick_gelu_kernels_built() { return true; }

at::Tensor quick_gelu_by_kernel(const at::Tensor& x) { return takes(x) ? QuickGeluKernel::apply(x) : quick_gelu(x); }

#else

bool quick_gelu_kernels_built() { return false; }

at::Tensor quick_gelu_by_kernel(const at::Tensor& x) { return quick_gelu(x); }

#endif

}  // namespace clip::model
