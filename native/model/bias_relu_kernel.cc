#include "model/bias_relu_kernel.h"

#include <torch/autograd.h>

#include <limits>

// CMakeLists.txt defines CLIP_NATIVE_KERNELS when it compiles native/kernels/*.cu with nvcc.
#ifdef CLIP_NATIVE_KERNELS
#include <c10/cuda/CUDAGuard.h>

#include "kernels/bias_relu.h"
#include "model/column_sums.h"
#include "model/kernel_launch.h"
#endif

namespace clip::model {

#ifdef CLIP_NATIVE_KERNELS

namespace {

bool channels_last(const at::Tensor& t) { return t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast); }

// What the kernel takes: x fp32/fp16/bf16 on CUDA, channels-last (a row-major [N·H·W, C] matrix);
// bias C fp32 values beside it; a residual like x.
bool takes(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& residual) {
  const auto t = x.scalar_type();
  if (!x.is_cuda() || !(t == at::kFloat || t == at::kHalf || t == at::kBFloat16) || !channels_last(x) || x.numel() == 0) return false;
  if (x.size(1) > std::numeric_limits<int>::max()) return false;
  if (bias.scalar_type() != at::kFloat || bias.device() != x.device() || bias.numel() != x.size(1) || !bias.is_contiguous()) return false;
  return !residual.defined() || (residual.scalar_type() == t && residual.device() == x.device() && residual.sizes() == x.sizes() && channels_last(residual));
}

class BiasReluKernel : public torch::autograd::Function<BiasReluKernel> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& bias, const at::Tensor& residual) {
    const c10::cuda::CUDAGuard guard(x.device());
    at::Tensor y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    const int64_t channels = x.size(1), rows = x.numel() / channels;
    check_launch(kernels::bias_relu_forward(kernel_dtype(x.scalar_type()), x.const_data_ptr(), bias.const_data_ptr<float>(),
                                            residual.defined() ? residual.const_data_ptr() : nullptr, y.mutable_data_ptr(), rows, channels, stream_of(x)),
                 "bias + ReLU");
    ctx->save_for_backward({y});
    ctx->saved_data["residual"] = residual.defined();
    return y;
  }

  // Without a residual. An undefined tensor cannot be one of apply()'s arguments: autograd records
  // each tensor argument's device, and an undefined one has none ("tensor does not have a device").
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& bias) {
    return forward(ctx, x, bias, at::Tensor());
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const at::Tensor y = ctx->get_saved_variables()[0];
    // Where the ReLU passed (y > 0) the gradient goes to x, the residual and the bias alike.
    const at::Tensor g = at::threshold_backward(grads[0], y, 0).contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor dbias;
    if (ctx->needs_input_grad(1)) dbias = column_sums(g.permute({0, 2, 3, 1}).reshape({-1, g.size(1)}), at::kFloat);
    // Without a residual the third gradient is undefined, which autograd accepts beyond the two inputs.
    return {g, dbias, ctx->saved_data["residual"].toBool() ? g : at::Tensor()};
  }
};

}  // namespace

std::optional<at::Tensor> bias_relu_by_kernel(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& residual) {
  if (!takes(x, bias, residual)) return std::nullopt;
  return residual.defined() ? BiasReluKernel::apply(x, bias, residual) : BiasReluKernel::apply(x, bias);
}

#else

std::optional<at::Tensor> bias_relu_by_kernel(const at::Tensor&, const at::Tensor&, const at::Tensor&) { return std::nullopt; }

#endif

}  // namespace clip::model
