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

StepResult Trainer::step(const at::Tensor& images_in, const at::Tensor& tokens_in, const std::optional<at::Tensor>& labels, double lr) {
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
  StepResult result{loss.item<double>(), false, false, std::nan(""), 1.0};
  if (!std::isfinite(result.loss)) {
    // The update is dropped, with any gradients gathered for it; under fp16 the scale backs off too.
    for (auto& s : optimizer_->states()) s.param.mutable_grad() = at::Tensor();
    counters_.micro_steps = (counters_.micro_steps / options_.accumulate) * options_.accumulate;
    ++counters_.skipped_steps;
    result.skipped = true;
    if (scaler_) {
      result.loss_scale = scaler_->scale_tensor().item<double>();
      scaler_->update(at::ones({1}, scaler_->scale_tensor().options()));
    }
    return result;
  }
  at::Tensor to_backward = options_.accumulate > 1 ? loss / static_cast<double>(options_.accumulate) : loss;
  if (scaler_) to_backward = scaler_->scale(to_backward);
  to_backward.backward();
  ++counters_.micro_steps;
  const bool boundary = counters_.micro_steps % options_.accumulate == 0;
  if (!boundary) return result;

  std::vector<at::Tensor> grads;
  for (auto& s : optimizer_->states()) {
    if (s.param.grad().defined()) grads.push_back(s.param.grad());
  }
  std::optional<at::Tensor> found_inf;
  if (scaler_) {
    result.loss_scale = scaler_->scale_tensor().item<double>();
    found_inf = scaler_->unscale(grads);
  }
  if (options_.grad_clip_norm > 0 && !grads.empty()) {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2);
    at::Tensor total = at::stack(norms).norm(2);
    // No host synchronisation: the clip coefficient stays on the device.
    at::Tensor coef = (options_.grad_clip_norm / (total + 1e-6)).clamp_max(1.0);
    at::_foreach_mul_(grads, coef);
    result.grad_norm = total.item<double>();
  }
  optimizer_->step(lr, found_inf);
  if (scaler_) {
    scaler_->update(*found_inf);
    if (found_inf->item<float>() != 0.0f) {
      result.skipped = true;
      ++counters_.skipped_steps;
    }
  }
  if (!result.skipped) {
    ++counters_.optimizer_steps;
    result.updated = true;
  }
  if (options_.clamp_logit_scale) {
    at::NoGradGuard no_grad;
    model_->logit_scale.clamp_(0.0, std::log(100.0));
  }
  for (auto& s : optimizer_->states()) s.param.mutable_grad() = at::Tensor();
  return result;
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
}

}  // namespace clip::train
