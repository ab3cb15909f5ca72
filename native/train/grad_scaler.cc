#include "train/grad_scaler.h"

namespace clip::train {

GradScaler::GradScaler(at::Device device, GradScalerOptions options) : options_(options) {
  scale_ = at::full({1}, options.init_scale, at::TensorOptions().dtype(at::kFloat).device(device));
  growth_tracker_ = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(device));
}

at::Tensor GradScaler::unscale(const std::vector<at::Tensor>& grads) {
  at::Tensor found_inf = at::zeros({1}, scale_.options());
  if (!grads.empty()) {
    at::Tensor inv_scale = scale_.reciprocal();
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale);
  }
  return found_inf;
}

void GradScaler::update(const at::Tensor& found_inf) {
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf, options_.growth_factor, options_.backoff_factor, options_.growth_interval);
}

}  // namespace clip::train
