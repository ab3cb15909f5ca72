#include "train/optimizer.h"

#include <ATen/core/grad_mode.h>

namespace clip::train {

bool Adam::decays(const std::string& name, const at::Tensor& param) {
  // open_clip_train/main.py's `exclude`: p.ndim < 2 or "bn", "ln", "bias" or "logit_scale" in the
  // name. The 2-D embeddings (token, positional) are decayed, as there.
  if (param.dim() < 2) return false;  // biases, norm weights, logit_scale, class_embedding
  for (const char* part : {"bn", "ln", "bias", "logit_scale"}) {
    if (name.find(part) != std::string::npos) return false;
  }
  return true;
}

Adam::Adam(std::vector<std::pair<std::string, at::Tensor>> params, AdamOptions options) : options_(options) {
  for (auto& [name, param] : params) {
    ParamState s;
    s.name = name;
    s.param = param;
    s.exp_avg = at::zeros_like(param, at::MemoryFormat::Preserve);
    s.exp_avg_sq = at::zeros_like(param, at::MemoryFormat::Preserve);
    s.step = at::zeros({}, param.options().dtype(at::kFloat));
    // Adam's L2 decay applies to every parameter, as torch.optim.Adam(model.parameters()) does.
    s.decay = options.decoupled ? decays(name, param) : true;
    states_.push_back(std::move(s));
  }
}

void Adam::update_group(bool decay, const at::Tensor& lr, const std::optional<at::Tensor>& found_inf) {
  std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
  for (auto& s : states_) {
    if (s.decay != decay || !s.param.grad().defined()) continue;
    params.push_back(s.param);
    grads.push_back(s.param.grad());
    exp_avgs.push_back(s.exp_avg);
    exp_avg_sqs.push_back(s.exp_avg_sq);
    steps.push_back(s.step);
  }
  if (params.empty()) return;
  const double wd = decay ? options_.weight_decay : 0.0;
  // The fused kernels read the step counters but do not advance them (torch.optim does it around
  // the call): advance here, on the device, and take the step back where the scaler found inf/NaN.
  at::_foreach_add_(steps, 1);
  if (options_.decoupled) {
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, lr, options_.beta1, options_.beta2, wd, options_.eps,
                      /*amsgrad=*/false, /*maximize=*/false, /*grad_scale=*/std::nullopt, found_inf);
  } else {
    at::_fused_adam_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, lr, options_.beta1, options_.beta2, wd, options_.eps,
                     /*amsgrad=*/false, /*maximize=*/false, /*grad_scale=*/std::nullopt, found_inf);
  }
  if (found_inf) {
    const at::Tensor skipped = found_inf->reshape({});  // the counters are 0-dim
    at::_foreach_sub_(steps, std::vector<at::Tensor>(steps.size(), skipped));
  }
}

void Adam::step(const at::Tensor& lr, const std::optional<at::Tensor>& found_inf) {
  at::NoGradGuard no_grad;
  update_group(true, lr, found_inf);
  update_group(false, lr, found_inf);
}

}  // namespace clip::train
