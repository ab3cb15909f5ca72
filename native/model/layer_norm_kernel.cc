#include "model/layer_norm_kernel.h"

#include <torch/autograd.h>

#include <limits>

// CMakeLists.txt defines CLIP_NATIVE_KERNELS when it compiles native/kernels/*.cu with nvcc.
#ifdef CLIP_NATIVE_KERNELS
#include <c10/cuda/CUDAGuard.h>

#include "kernels/layer_norm.h"
#include "model/kernel_launch.h"
#endif

namespace clip::model {

#ifdef CLIP_NATIVE_KERNELS

namespace {

bool takes(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::ScalarType out_type) {
  const auto t = x.scalar_type();
  if (!x.is_cuda() || !(t == at::kFloat || t == at::kHalf || t == at::kBFloat16) || x.dim() == 0 || x.numel() == 0) return false;
  if (out_type != t && !(t == at::kFloat && (out_type == at::kHalf || out_type == at::kBFloat16))) return false;
  const int64_t cols = x.size(-1);
  for (const at::Tensor& p : {weight, bias}) {
    if (p.scalar_type() != at::kFloat || p.device() != x.device() || p.numel() != cols) return false;
  }
  return cols <= std::numeric_limits<int>::max();
}

class LayerNormKernel : public torch::autograd::Function<LayerNormKernel> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, double eps,
                            at::ScalarType out_type) {
    const at::Tensor x = input.contiguous(), gamma = weight.contiguous(), beta = bias.contiguous();
    const int64_t cols = x.size(-1), rows = x.numel() / cols;
    const c10::cuda::CUDAGuard guard(x.device());
    at::Tensor y = at::empty_like(x, x.options().dtype(out_type), at::MemoryFormat::Contiguous);
    const auto stats = x.options().dtype(at::kFloat);
    at::Tensor mean = at::empty({rows}, stats), rstd = at::empty({rows}, stats);
    check_launch(kernels::layer_norm_forward(kernel_dtype(x.scalar_type()), kernel_dtype(out_type), x.const_data_ptr(), gamma.const_data_ptr<float>(),
                                             beta.const_data_ptr<float>(), y.mutable_data_ptr(), mean.mutable_data_ptr<float>(),
                                             rstd.mutable_data_ptr<float>(), rows, cols, static_cast<float>(eps), stream_of(x)),
                 "layer_norm forward");
    ctx->save_for_backward({x, gamma, mean, rstd});
    ctx->saved_data["out_type"] = static_cast<int64_t>(out_type);
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &gamma = saved[1], &mean = saved[2], &rstd = saved[3];
    const auto out_type = static_cast<at::ScalarType>(ctx->saved_data["out_type"].toInt());
    const at::Tensor dy = grads[0].to(out_type).contiguous();
    const int64_t cols = x.size(-1), rows = x.numel() / cols;
    const c10::cuda::CUDAGuard guard(x.device());
    const bool input_grad = ctx->needs_input_grad(0), parameter_grads = ctx->needs_input_grad(1) || ctx->needs_input_grad(2);
    at::Tensor dx, dgamma, dbeta, workspace;
    if (input_grad) dx = at::empty_like(x);
    if (parameter_grads) {
      dgamma = at::empty({cols}, gamma.options());
      dbeta = at::empty({cols}, gamma.options());
      workspace = at::empty({kernels::layer_norm_workspace_size(rows, cols)}, gamma.options());
    }
    check_launch(kernels::layer_norm_backward(kernel_dtype(x.scalar_type()), kernel_dtype(out_type), dy.const_data_ptr(), x.const_data_ptr(),
                                              mean.const_data_ptr<float>(), rstd.const_data_ptr<float>(), gamma.const_data_ptr<float>(),
                                              input_grad ? dx.mutable_data_ptr() : nullptr,
                                              parameter_grads ? dgamma.mutable_data_ptr<float>() : nullptr,
                                              parameter_grads ? dbeta.mutable_data_ptr<float>() : nullptr,
                                              parameter_grads ? workspace.mutable_data_ptr<float>() : nullptr, rows, cols, stream_of(x)),
                 "layer_norm backward");
    return {dx, dgamma, dbeta, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::optional<at::Tensor> layer_norm_by_kernel(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps,
                                               at::ScalarType out_type) {
  if (!takes(x, weight, bias, out_type)) return std::nullopt;
  return LayerNormKernel::apply(x, weight, bias, eps, out_type);
}

#else

std::optional<at::Tensor> layer_norm_by_kernel(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, at::ScalarType) { return std::nullopt; }

#endif

}  // namespace clip::model
