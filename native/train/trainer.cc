#include "train/trainer.h"

#include <cmath>
#include <map>
#include <stdexcept>

#include "model/state_dict.h"
#include "train/loss.h"

namespace clip::train {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool is_text_tower(const std::string& name) {
  for (const char* prefix : {"transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection"}) {
    if (starts_with(name, prefix)) return true;
  }
  return false;
}

}  // namespace

Trainer::Trainer(model::Clip model, at::Device device, TrainerOptions options) : model_(std::move(model)), device_(device), options_(options) {
  if (options_.accumulate < 1) throw std::invalid_argument("accumulate must be at least 1");
  if (options_.precision == model::Precision::kFp16 && device.is_cpu())
    throw std::invalid_argument("fp16 autocast needs a CUDA device; use bf16 or fp32 on the CPU");
  for (const auto& pattern : options_.freeze) {
    try {
      freeze_.emplace_back(pattern);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("freeze pattern '" + pattern + "' is not a valid regular expression: " + e.what());
    }
  }
  std::vector<std::pair<std::string, at::Tensor>> trainable;
  for (const auto& p : model_->named_parameters()) {
    at::Tensor param = p.value();
    if (is_frozen(p.key())) {
      param.set_requires_grad(false);
      frozen_ += param.numel();
    } else {
      param.set_requires_grad(true);
      trainable.emplace_back(p.key(), param);
    }
  }
  if (trainable.empty()) throw std::invalid_argument("every parameter is frozen: nothing to train");
  options_.adam.decoupled = options_.adamw;
  optimizer_ = std::make_unique<Adam>(std::move(trainable), options_.adam);
  if (options_.precision == model::Precision::kFp16) scaler_ = std::make_unique<GradScaler>(device, options_.scaler);
  const auto stat = at::TensorOptions().dtype(at::kFloat).device(device);
  skipped_ = at::zeros({1}, stat);
  loss_sum_ = at::zeros({1}, stat);
  loss_count_ = at::zeros({1}, stat);
  non_finite_run_ = at::zeros({1}, stat);
}

bool Trainer::is_frozen(const std::string& name) const {
  if (options_.lock_image && starts_with(name, "visual.")) return true;
  if (options_.lock_text && is_text_tower(name)) return true;
  for (const auto& re : freeze_) {
    if (std::regex_search(name, re)) return true;
  }
  return false;
}

int64_t Trainer::trainable_parameters() const {
  int64_t n = 0;
  for (const auto& s : optimizer_->states()) n += s.param.numel();
  return n;
}

void Trainer::set_modes() {
  model_->train(true);
  // A locked image tower keeps its statistics too (open_clip's lock_image freezes BatchNorm).
  if (!options_.batchnorm_train || options_.lock_image) {
    for (auto& bn : model_->batch_norms()) bn->eval();
  }
}

StepResult Trainer::step(const at::Tensor& images_in, const at::Tensor& tokens_in, const std::optional<at::Tensor>& labels, double lr,
                         bool read_back) {
  if (!(lr >= 0) || !std::isfinite(lr)) throw std::invalid_argument("learning rate must be a finite non-negative number");
  set_modes();
  model_->check_images(images_in);
  model_->check_tokens(tokens_in);
  const at::Tensor images = images_in.to(device_, /*non_blocking=*/true);
  const at::Tensor tokens = tokens_in.to(device_, /*non_blocking=*/true);
  if (images.size(0) != tokens.size(0))
    throw std::invalid_argument("a batch needs as many token rows as images: got " + std::to_string(images.size(0)) + " images and " +
                                std::to_string(tokens.size(0)) + " texts");
  if (labels && labels->numel() != images.size(0))
    throw std::invalid_argument("labels must hold one entry per image: got " + std::to_string(labels->numel()));

  at::Tensor loss;
  {
    model::AutocastGuard autocast(device_.type(), options_.precision);
    model::Logits logits = model_->forward(images, tokens);
    loss = contrastive_loss(logits.per_image, logits.per_text, labels);
  }
  StepResult result;
  // Everything below stays on the device: a non-finite loss is not tested on the host but turned into
  // a flag that makes the fused optimizer skip the update, as the fp16 scaler does for gradients.
  at::Tensor non_finite;
  {
    at::NoGradGuard no_grad;
    const at::Tensor value = loss.detach().reshape({1});
    non_finite = at::logical_not(at::isfinite(value)).to(at::kFloat);
    loss_sum_.add_(at::where(non_finite > 0, at::zeros_like(value), value));
    loss_count_.add_(1.0 - non_finite);
    non_finite_run_.add_(1.0).mul_(non_finite);
    pending_non_finite_ = pending_non_finite_.defined() ? at::maximum(pending_non_finite_, non_finite) : non_finite;
  }
  at::Tensor to_backward = options_.accumulate > 1 ? loss / static_cast<double>(options_.accumulate) : loss;
  if (scaler_) to_backward = scaler_->scale(to_backward);
  to_backward.backward();
  ++counters_.micro_steps;
  ++micro_in_group_;
  if (micro_in_group_ == options_.accumulate) apply_update(lr, read_back, result);
  // Read last, once the update is queued: the device works on it while the host waits.
  if (read_back) {
    result.read = true;
    result.loss = loss.item<double>();
  }
  return result;
}

StepResult Trainer::flush(double lr, bool read_back) {
  StepResult result;
  if (micro_in_group_ > 0) apply_update(lr, read_back, result);
  return result;
}

void Trainer::apply_update(double lr, bool read_back, StepResult& result) {
  micro_in_group_ = 0;
  result.boundary = true;
  std::vector<at::Tensor> grads;
  for (auto& s : optimizer_->states()) {
    if (s.param.grad().defined()) grads.push_back(s.param.grad());
  }
  at::Tensor found_inf = pending_non_finite_;
  pending_non_finite_ = at::Tensor();
  if (scaler_) {
    if (read_back) result.loss_scale = scaler_->scale_tensor().item<double>();
    found_inf = at::maximum(found_inf, scaler_->unscale(grads));
  }
  at::Tensor grad_norm;
  if (options_.grad_clip_norm > 0 && !grads.empty()) {
    at::NoGradGuard no_grad;
    grad_norm = at::stack(at::_foreach_norm(grads, 2)).norm(2);
    at::Tensor coef = (options_.grad_clip_norm / (grad_norm + 1e-6)).clamp_max(1.0);
    at::_foreach_mul_(grads, coef);
  }
  optimizer_->step(lr, found_inf);
  if (scaler_) scaler_->update(found_inf);
  {
    at::NoGradGuard no_grad;
    skipped_.add_(found_inf);
    if (options_.clamp_logit_scale) model_->logit_scale.clamp_(0.0, std::log(100.0));
  }
  ++counters_.optimizer_steps;
  for (auto& s : optimizer_->states()) s.param.mutable_grad() = at::Tensor();
  if (read_back) {
    result.skipped = found_inf.item<float>() != 0.0f;
    if (grad_norm.defined()) result.grad_norm = grad_norm.item<double>();
  }
}

TrainerStats Trainer::stats() const {
  const at::Tensor all = at::cat({skipped_, loss_sum_, loss_count_, non_finite_run_}).to(at::kCPU, at::kDouble);
  const double* v = all.data_ptr<double>();
  return {v[0], v[1], v[2], v[3]};
}

void Trainer::reset_epoch_stats() {
  loss_sum_.zero_();
  loss_count_.zero_();
}

std::vector<std::pair<std::string, at::Tensor>> Trainer::state_tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& s : optimizer_->states()) {
    out.emplace_back("optimizer.exp_avg." + s.name, s.exp_avg.detach().to(at::kCPU).contiguous());
    out.emplace_back("optimizer.exp_avg_sq." + s.name, s.exp_avg_sq.detach().to(at::kCPU).contiguous());
    out.emplace_back("optimizer.step." + s.name, s.step.detach().to(at::kCPU).contiguous());
  }
  if (scaler_) {
    out.emplace_back("scaler.scale", scaler_->scale_tensor().to(at::kCPU));
    out.emplace_back("scaler.growth_tracker", scaler_->growth_tracker().to(at::kCPU));
  }
  out.emplace_back("trainer.skipped", skipped_.to(at::kCPU));
  out.emplace_back("trainer.loss_sum", loss_sum_.to(at::kCPU));
  out.emplace_back("trainer.loss_count", loss_count_.to(at::kCPU));
  out.emplace_back("trainer.non_finite_run", non_finite_run_.to(at::kCPU));
  return out;
}

void Trainer::load_state_tensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  auto restore = [&](const std::string& name, at::Tensor& target) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw std::invalid_argument("checkpoint has no optimizer state '" + name + "' (was it made with other frozen parameters or another optimizer?)");
    if (it->second.sizes() != target.sizes())
      throw std::invalid_argument("checkpoint state '" + name + "' has shape " + c10::str(it->second.sizes()) + ", expected " + c10::str(target.sizes()));
    at::NoGradGuard no_grad;
    target.copy_(it->second);
  };
  for (auto& s : optimizer_->states()) {
    restore("optimizer.exp_avg." + s.name, s.exp_avg);
    restore("optimizer.exp_avg_sq." + s.name, s.exp_avg_sq);
    restore("optimizer.step." + s.name, s.step);
  }
  if (scaler_) {
    restore("scaler.scale", scaler_->scale_tensor());
    restore("scaler.growth_tracker", scaler_->growth_tracker());
  }
  restore("trainer.skipped", skipped_);
  restore("trainer.loss_sum", loss_sum_);
  restore("trainer.loss_count", loss_count_);
  restore("trainer.non_finite_run", non_finite_run_);
}

}  // namespace clip::train
