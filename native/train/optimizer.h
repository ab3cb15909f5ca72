// Adam (L2 weight decay added to the gradient, the blog's torch.optim.Adam) and AdamW (decoupled
// decay, skipped for biases, norms, 1-D parameters and logit_scale as open_clip's training does), on LibTorch's
// fused multi-tensor kernels with on-device step counters.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

namespace clip::train {

struct AdamOptions {
  bool decoupled = false;  // false: Adam with L2; true: AdamW
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-6, weight_decay = 0.001;  // as DEFAULT_TRAINER_OPTIONS (src/train/trainer.ts)
};

struct ParamState {
  std::string name;
  at::Tensor param;
  at::Tensor exp_avg, exp_avg_sq, step;  // step: fp32 scalar on the parameter's device
  bool decay = true;
};

class Adam {
 public:
  Adam(std::vector<std::pair<std::string, at::Tensor>> params, AdamOptions options);

  /**
   * One update of every parameter that has a gradient. `lr` is a 0-dim tensor on the parameters'
   * device (fp32 on CUDA, as the fused kernel reads it; fp64 on the CPU, where it equals a double lr
   * bit for bit), so a captured CUDA graph reads the current value instead of the one at capture.
   * `found_inf`: a 1-element tensor; where it is non-zero the fused kernel leaves parameters and state
   * untouched.
   */
  void step(const at::Tensor& lr, const std::optional<at::Tensor>& found_inf = std::nullopt);

  std::vector<ParamState>& states() { return states_; }
  const AdamOptions& options() const { return options_; }

  /** open_clip's rule for which parameters AdamW decays. */
  static bool decays(const std::string& name, const at::Tensor& param);

 private:
  void update_group(bool decay, const at::Tensor& lr, const std::optional<at::Tensor>& found_inf);
  std::vector<ParamState> states_;
  AdamOptions options_;
};

}  // namespace clip::train
