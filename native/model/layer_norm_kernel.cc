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

bool half(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

// What the kernels take (native/kernels/layer_norm.h): x fp32/fp16/bf16 on CUDA, the output in x's
// type or a half type from fp32, γ/β fp32 beside x; a residual of x's shape in x's type or, with an
// fp32 x, the output's half type.
bool takes(const at::Tensor& x, const at::Tensor* r, const at::Tensor& weight, const at::Tensor& bias, at::ScalarType out_type) {
  const auto t = x.scalar_type();
  if (!x.is_cuda() || !(t == at::kFloat || half(t)) || x.dim() == 0 || x.numel() == 0) return false;
  if (out_type != t && !(t == at::kFloat && half(out_type))) return false;
  const int64_t cols = x.size(-1);
  if (cols > std::numeric_limits<int>::max()) return false;
  for (const at::Tensor& p : {weight, bias}) {
    if (p.scalar_type() != at::kFloat || p.device() != x.device() || p.numel() != cols) return false;
  }
  if (r == nullptr) return true;
  const auto rt = r->scalar_type();
  return r->device() == x.device() && r->sizes() == x.sizes() && (rt == t || (t == at::kFloat && rt == out_type && half(rt)));
}

struct Shape {
  int64_t rows, cols;
};
Shape rows_of(const at::Tensor& x) { return {x.numel() / x.size(-1), x.size(-1)}; }

// The γ/β gradients when autograd wants either (both are computed together), with the workspace.
struct ParameterGrads {
  at::Tensor dgamma, dbeta, workspace;
  ParameterGrads(bool wanted, const at::Tensor& gamma, Shape shape) {
    if (!wanted) return;
    dgamma = at::empty({shape.cols}, gamma.options());
    dbeta = at::empty({shape.cols}, gamma.options());
    workspace = at::empty({kernels::layer_norm_workspace_size(shape.rows, shape.cols)}, gamma.options());
  }
  float* ptr(at::Tensor& t) { return t.defined() ? t.mutable_data_ptr<float>() : nullptr; }
};

class LayerNormKernel : public torch::autograd::Function<LayerNormKernel> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, double eps,
                            at::ScalarType out_type) {
    const at::Tensor x = input.contiguous(), gamma = weight.contiguous(), beta = bias.contiguous();
    const Shape shape = rows_of(x);
    const c10::cuda::CUDAGuard guard(x.device());
    at::Tensor y = at::empty_like(x, x.options().dtype(out_type), at::MemoryFormat::Contiguous);
    at::Tensor mean = at::empty({shape.rows}, x.options().dtype(at::kFloat)), rstd = at::empty_like(mean);
    check_launch(kernels::layer_norm_forward(kernel_dtype(x.scalar_type()), kernel_dtype(out_type), x.const_data_ptr(), gamma.const_data_ptr<float>(),
                                             beta.const_data_ptr<float>(), y.mutable_data_ptr(), mean.mutable_data_ptr<float>(),
                                             rstd.mutable_data_ptr<float>(), shape.rows, shape.cols, static_cast<float>(eps), stream_of(x)),
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
    const Shape shape = rows_of(x);
    const c10::cuda::CUDAGuard guard(x.device());
    at::Tensor dx = ctx->needs_input_grad(0) ? at::empty_like(x) : at::Tensor();
    ParameterGrads p(ctx->needs_input_grad(1) || ctx->needs_input_grad(2), gamma, shape);
    check_launch(kernels::layer_norm_backward(kernel_dtype(x.scalar_type()), kernel_dtype(out_type), dy.const_data_ptr(), x.const_data_ptr(),
                                              mean.const_data_ptr<float>(), rstd.const_data_ptr<float>(), gamma.const_data_ptr<float>(),
                                              dx.defined() ? dx.mutable_data_ptr() : nullptr, p.ptr(p.dgamma), p.ptr(p.dbeta), p.ptr(p.workspace),
                                              shape.rows, shape.cols, stream_of(x)),
                 "layer_norm backward");
    return {dx, p.dgamma, p.dbeta, at::Tensor(), at::Tensor()};
  }
};

class AddLayerNormKernel : public torch::autograd::Function<AddLayerNormKernel> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& residual,
                                                const at::Tensor& weight, const at::Tensor& bias, double eps, at::ScalarType out_type) {
    const at::Tensor x = input.contiguous(), r = residual.contiguous(), gamma = weight.contiguous(), beta = bias.contiguous();
    const Shape shape = rows_of(x);
    const c10::cuda::CUDAGuard guard(x.device());
    at::Tensor s = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor y = at::empty_like(x, x.options().dtype(out_type), at::MemoryFormat::Contiguous);
    at::Tensor mean = at::empty({shape.rows}, x.options().dtype(at::kFloat)), rstd = at::empty_like(mean);
    check_launch(kernels::add_layer_norm_forward(kernel_dtype(x.scalar_type()), kernel_dtype(r.scalar_type()), kernel_dtype(out_type), x.const_data_ptr(),
                                                 r.const_data_ptr(), s.mutable_data_ptr(), gamma.const_data_ptr<float>(), beta.const_data_ptr<float>(),
                                                 y.mutable_data_ptr(), mean.mutable_data_ptr<float>(), rstd.mutable_data_ptr<float>(), shape.rows,
                                                 shape.cols, static_cast<float>(eps), stream_of(x)),
                 "add + layer_norm forward");
    ctx->save_for_backward({s, gamma, mean, rstd});
    ctx->saved_data["out_type"] = static_cast<int64_t>(out_type);
    ctx->saved_data["residual_type"] = static_cast<int64_t>(r.scalar_type());
    return {s, y};
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &s = saved[0], &gamma = saved[1], &mean = saved[2], &rstd = saved[3];
    const auto out_type = static_cast<at::ScalarType>(ctx->saved_data["out_type"].toInt());
    const auto residual_type = static_cast<at::ScalarType>(ctx->saved_data["residual_type"].toInt());
    // The sum's gradient from its other uses (the residual stream onwards), if any reached it.
    const at::Tensor ds = grads[0].defined() ? grads[0].to(s.scalar_type()).contiguous() : at::Tensor();
    const at::Tensor dy = grads[1].to(out_type).contiguous();
    const Shape shape = rows_of(s);
    const c10::cuda::CUDAGuard guard(s.device());
    at::Tensor dx = ctx->needs_input_grad(0) ? at::empty_like(s) : at::Tensor();
    at::Tensor dr = ctx->needs_input_grad(1) ? at::empty_like(s, s.options().dtype(residual_type)) : at::Tensor();
    ParameterGrads p(ctx->needs_input_grad(2) || ctx->needs_input_grad(3), gamma, shape);
    check_launch(kernels::add_layer_norm_backward(kernel_dtype(s.scalar_type()), kernel_dtype(residual_type), kernel_dtype(out_type), dy.const_data_ptr(),
                                                  ds.defined() ? ds.const_data_ptr() : nullptr, s.const_data_ptr(), mean.const_data_ptr<float>(),
                                                  rstd.const_data_ptr<float>(), gamma.const_data_ptr<float>(),
                                                  dx.defined() ? dx.mutable_data_ptr() : nullptr, dr.defined() ? dr.mutable_data_ptr() : nullptr,
                                                  p.ptr(p.dgamma), p.ptr(p.dbeta), p.ptr(p.workspace), shape.rows, shape.cols, stream_of(s)),
                 "add + layer_norm backward");
    return {dx, dr, p.dgamma, p.dbeta, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::optional<at::Tensor> layer_norm_by_kernel(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps, at::ScalarType out_type) {
  if (!takes(x, nullptr, weight, bias, out_type)) return std::nullopt;
  return LayerNormKernel::apply(x, weight, bias, eps, out_type);
}

std::optional<std::pair<at::Tensor, at::Tensor>> add_layer_norm_by_kernel(const at::Tensor& x, const at::Tensor& r, const at::Tensor& weight,
                                                                          const at::Tensor& bias, double eps, at::ScalarType out_type) {
  if (!takes(x, &r, weight, bias, out_type)) return std::nullopt;
  auto outputs = AddLayerNormKernel::apply(x, r, weight, bias, eps, out_type);
  return std::make_pair(std::move(outputs[0]), std::move(outputs[1]));
}

#else

std::optional<at::Tensor> layer_norm_by_kernel(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, at::ScalarType) { return std::nullopt; }

std::optional<std::pair<at::Tensor, at::Tensor>> add_layer_norm_by_kernel(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                                                                          at::ScalarType) {
  return std::nullopt;
}

#endif

}  // namespace clip::model
