// Dynamic loss scaling for fp16 autocast. LibTorch C++ has no GradScaler, so this rebuilds
// torch.amp.GradScaler from the same AMP kernels: scale the loss, unscale the gradients while
// checking them for inf/NaN, skip the step where found, and grow or back off the scale.
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace clip::train {

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class GradScaler {
 public:
  GradScaler(at::Device device, GradScalerOptions options);

  at::Tensor scale(const at::Tensor& loss) const { return loss * scale_; }
  /** Divides the gradients by the scale in place; returns found_inf (1-element, 1.0 when any is inf/NaN). */
  at::Tensor unscale(const std::vector<at::Tensor>& grads);
  /** After the (possibly skipped) optimizer step. */
  void update(const at::Tensor& found_inf);

  at::Tensor& scale_tensor() { return scale_; }
  at::Tensor& growth_tracker() { return growth_tracker_; }

 private:
  GradScalerOptions options_;
  at::Tensor scale_;           // fp32 [1] on the device
  at::Tensor growth_tracker_;  // int32 [1] on the device
};

}  // namespace clip::train
