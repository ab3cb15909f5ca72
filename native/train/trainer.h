// The native train step: forward of both towers under autocast, contrastive loss, backward,
// gradient clipping, optimizer step and logit_scale clamp, with fp32 master weights always.
// Training policy (schedules, epochs, logging, checkpoint cadence) lives in TypeScript.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "model/clip.h"
#include "model/precision.h"
#include "train/grad_scaler.h"
#include "train/optimizer.h"

namespace clip::train {

struct TrainerOptions {
  bool adamw = false;
  AdamOptions adam;
  model::Precision precision = model::Precision::kFp32;
  bool batchnorm_train = false;  // default: BatchNorm stays in eval mode (running statistics frozen)
  double grad_clip_norm = 0.0;   // 0: no clipping
  int64_t accumulate = 1;        // micro-batches per optimizer step
  bool lock_image = false, lock_text = false;
  std::vector<std::string> freeze;  // regular expressions over parameter names
  bool clamp_logit_scale = true;    // to [0, ln 100] after each step, as CLIP's training did
  GradScalerOptions scaler;
};

struct StepResult {
  double loss;            // before the update
  bool updated;           // an optimizer step ran (false while accumulating or when skipped)
  bool skipped;           // the step was dropped: non-finite gradients (fp16) or loss
  double grad_norm;       // before clipping; NaN when not computed
  double loss_scale;      // fp16 only, else 1
};

/** Counters that, with the optimizer state tensors, let a run continue exactly. */
struct TrainerCounters {
  int64_t optimizer_steps = 0;
  int64_t micro_steps = 0;
  int64_t skipped_steps = 0;
};

class Trainer {
 public:
  Trainer(model::Clip model, at::Device device, TrainerOptions options);

  StepResult step(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels, double lr);

  /** Optimizer moments, step counters and loss-scaler state as named CPU tensors. */
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const;
  /** Restores what state_tensors() gave; throws naming any missing or mis-shaped entry. */
  void load_state_tensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

  TrainerCounters& counters() { return counters_; }
  const TrainerOptions& options() const { return options_; }
  int64_t trainable_parameters() const;
  int64_t frozen_parameters() const { return frozen_; }

 private:
  void set_modes();
  bool is_frozen(const std::string& name) const;

  model::Clip model_;
  at::Device device_;
  TrainerOptions options_;
  std::unique_ptr<Adam> optimizer_;
  std::unique_ptr<GradScaler> scaler_;
  std::vector<std::regex> freeze_;
  TrainerCounters counters_;
  int64_t frozen_ = 0;
};

}  // namespace clip::train
