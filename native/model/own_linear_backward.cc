#include "model/own_linear_backward.h"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>

#include "model/column_sums.h"

namespace clip::model {
namespace {

// alpha · a b, alpha applied by the product itself (beta 0: the 1-element `self` is never read).
at::Tensor scaled_mm(const at::Tensor& a, const at::Tensor& b, double alpha) {
  if (alpha == 1.0) return at::mm(a, b);
  return at::addmm(at::empty({1}, a.options()), a, b, /*beta=*/0.0, /*alpha=*/alpha);
}

class OwnLinearBackward : public torch::autograd::Function<OwnLinearBackward> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double alpha) {
    const at::DeviceType device = x.device().type();
    // Autocast's cast of each input, made here once (and undone in backward), then kept out.
    const at::ScalarType compute = at::autocast::is_autocast_enabled(device) ? at::autocast::get_autocast_dtype(device) : x.scalar_type();
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const at::Tensor rows = x.reshape({-1, x.size(-1)}).to(compute);
    const at::Tensor w = weight.to(compute);
    at::Tensor y = bias.defined() ? at::addmm(bias.to(compute), rows, w.t(), /*beta=*/1.0, /*alpha=*/alpha) : scaled_mm(rows, w.t(), alpha);
    ctx->save_for_backward({rows, w});
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["x_type"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["weight_type"] = static_cast<int64_t>(weight.scalar_type());
    ctx->saved_data["bias_type"] = static_cast<int64_t>(bias.defined() ? bias.scalar_type() : compute);
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = w.size(0);
    return y.view(shape);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &rows = saved[0], &w = saved[1];
    const double alpha = ctx->saved_data["alpha"].toDouble();
    const auto type = [&](const char* key) { return static_cast<at::ScalarType>(ctx->saved_data[key].toInt()); };
    const at::Tensor dy = grads[0].reshape({-1, w.size(0)}).to(rows.scalar_type()).contiguous();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) dx = scaled_mm(dy, w, alpha).view(ctx->saved_data["x_sizes"].toIntVector()).to(type("x_type"));
    if (ctx->needs_input_grad(1)) dw = scaled_mm(dy.t(), rows, alpha).to(type("weight_type"));
    if (ctx->needs_input_grad(2)) db = column_sums(dy, dy.scalar_type()).to(type("bias_type"));
    return {dx, dw, db, at::Tensor()};
  }
};

}  // namespace

at::Tensor linear_with_own_backward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double alpha) {
  return OwnLinearBackward::apply(x, weight, bias, alpha);
}

}  // namespace clip::model
