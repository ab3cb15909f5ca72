// The native train step: forward of both towers under autocast, contrastive loss, backward,
// gradient clipping, optimizer step and logit_scale clamp, with fp32 master weights always.
// Training policy (schedules, epochs, logging, checkpoint cadence) lives in TypeScript.
#pragma once
#include <atomic>
#include <ATen/ATen.h>
#include <c10/core/Event.h>

#include <array>
#include <cmath>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "distributed/process_group.h"
#include "model/clip.h"
#include "model/precision.h"
#include "runtime/cuda_graph.h"
#include "train/flat_weights.h"
#include "train/grad_scaler.h"
#include "train/optimizer.h"

namespace clip::train {

// The binding sets every field from the JS options (src/native.ts NativeTrainerOptions, all keys
// required); the defaults are src/train/trainer.ts's DEFAULT_TRAINER_OPTIONS, which these initial
// values agree with.
struct TrainerOptions {
  bool adamw = false;
  AdamOptions adam;
  model::Precision precision = model::Precision::kFp32;
  bool batchnorm_train = false;  // default: BatchNorm stays in eval mode (running statistics frozen)
  double grad_clip_norm = 0.0;   // 0: no clipping
  int64_t accumulate = 1;        // micro-batches per optimizer step
  // How the micro-batches of one optimizer step combine. kContrastive (GradCache, open_clip's
  // accum_freq): they are one contrastive batch; each micro-batch's features are computed without a
  // graph as it arrives, the loss is taken over all of them at the last, and each micro-batch then
  // runs again with its features' gradient, so the update is that of one batch of accumulate × B while
  // activations are held for one micro-batch. kIndependent: the mean of each micro-batch's own loss.
  enum class Accumulation { kContrastive, kIndependent };
  Accumulation accumulation = Accumulation::kContrastive;
  // Each transformer block (ResNet stage) keeps only its input and runs again in backward.
  bool grad_checkpointing = false;
  bool lock_image = false, lock_text = false;
  std::vector<std::string> freeze;  // regular expressions over parameter names
  bool clamp_logit_scale = true;    // to [0, ln 100] after each step, as CLIP's training did
  GradScalerOptions scaler;
  // On a CUDA device with accumulate 1: after a few eager steps with the same batch shape, capture the
  // whole step (forward, loss, backward, clipping, optimizer, scaler) in a CUDA graph and replay it.
  bool cuda_graph = true;
  // Data parallel: the ranks of this group train one model. Weights start as rank 0's, gradients are
  // averaged every optimizer step and a non-finite loss on any rank skips the step on all of them.
  std::shared_ptr<dist::Group> group;
  // With a group: each rank's loss over its own batch only (the reference's per-process loss), instead
  // of its rows against every rank's features (the global batch's negatives).
  bool local_loss = false;
};

/**
 * What a step did. Reading it back costs a host synchronisation, so only a step asked to `read_back`
 * fills the values; the others leave them NaN/false and keep everything on the device. A step asked to
 * defer its read fills none of them either: Trainer::take_read() gives them later.
 */
struct StepResult {
  bool read = false;
  bool deferred = false;        // the values read back come from take_read()
  double loss = std::nan("");   // before the update
  bool boundary = false;        // this micro-batch completed an optimizer step (applied or skipped)
  bool skipped = false;         // that step was dropped: non-finite loss or (fp16) gradients
  double grad_norm = std::nan("");  // before clipping, when clipping
  double loss_scale = 1.0;      // fp16 only
  double non_finite_run = std::nan("");  // consecutive non-finite losses up to this step, when read
};

/** Host-side counters (no synchronisation to read). Skipped steps count as optimizer steps, as in
 * PyTorch, where a GradScaler-skipped step still advances the LR scheduler. */
struct TrainerCounters {
  int64_t optimizer_steps = 0;
  int64_t micro_steps = 0;
};

/** Device-side statistics, read back on demand (one synchronisation). */
struct TrainerStats {
  double skipped_steps;
  double loss_sum;         // finite losses since reset_epoch_stats()
  double loss_count;
  double non_finite_run;   // consecutive non-finite losses up to the last step
};

class Trainer {
 public:
  Trainer(model::Clip model, at::Device device, TrainerOptions options);
  ~Trainer();

  /**
   * One train step. With `defer_read` (and `read_back`), its values are not waited for: they travel to
   * the host behind the step, and take_read() gives them, oldest first, once the caller has queued the
   * next step, so the device has work while the host waits.
   */
  StepResult step(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels, double lr, bool read_back,
                  bool defer_read = false);
  /** The values of the oldest step that deferred its read (waits for them; safe beside a running step). */
  StepResult take_read();
  /** Applies the gradients of an incomplete accumulation group (at the end of an epoch); else nothing. */
  StepResult flush(double lr, bool read_back);
  /** Micro-batches gathered towards the next optimizer step (0 right after one). */
  int64_t pending_micro_batches() const { return micro_in_group_; }

  TrainerStats stats() const;
  void reset_epoch_stats();

  /** Optimizer moments, step counters and loss-scaler state as named CPU tensors. */
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const;
  /** Restores what state_tensors() gave; throws naming any missing or mis-shaped entry. */
  void load_state_tensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

  TrainerCounters& counters() { return counters_; }
  const TrainerOptions& options() const { return options_; }
  int64_t trainable_parameters() const;
  int64_t frozen_parameters() const { return frozen_; }
  /** Where the CUDA graph of the step stands ("off", "warming up", "captured", "failed: …", …). */
  std::string graph_status() const;
  /** Token positions the text tower runs: the longest trimmed prompt so far (ClipImpl::trim_tokens). */
  int64_t text_length() const { return text_length_.load(); }
  void set_text_length(int64_t length) { text_length_ = length; }
  /** The most steps this trainer had queued on its CUDA device at once, unfinished (0 elsewhere). */
  int64_t most_queued_steps() const { return most_queued_steps_.load(); }

  /** Steps queued on a CUDA device at most: step() waits for the oldest to finish before a new one. */
  static constexpr size_t kStepsQueued = 3;

 private:
  // The device part of a step: kernels only, no host synchronisation, so it can be captured.
  struct DeviceUpdate {
    at::Tensor found_inf;  // [1] fp32: the update was skipped
    at::Tensor grad_norm;  // 0-dim, when clipping
  };
  // What a step asked to read back gathers on the device as it is queued (undefined where the step has
  // none), to come to the host in one transfer after it: one synchronisation, not one per value, and
  // none before the update is queued.
  struct StepReads {
    at::Tensor loss;            // before the update
    at::Tensor found_inf;       // at an optimizer step
    at::Tensor grad_norm;       // when clipping
    at::Tensor loss_scale;      // fp16: the scale this step used (a copy: the update changes it)
    at::Tensor non_finite_run;  // consecutive non-finite losses up to this step
  };
  // StepReads on their way to the host: one tensor of their values (page-locked from a CUDA device,
  // copied behind the step), which are there once `ready` has passed.
  struct PendingRead {
    at::Tensor values;
    std::optional<c10::Event> ready;
    std::array<bool, 5> present{};  // which of StepReads' values, in its order
  };
  struct GraphedStep;
  class ForwardScope;
  // A micro-batch of a contrastive accumulation group, kept until the group's loss is known.
  struct CachedMicroBatch {
    at::Tensor images, tokens;
    std::optional<at::Tensor> labels;
    at::Tensor image_features, text_features;  // computed without a graph
  };

  void set_modes();
  /** Gathers the weights products read into one buffer (FlatWeights) once the first forward named
   * them, and again if a parameter's data was replaced since. */
  void prepare_flat_weights();
  /** The contrastive loss of a batch's features (with a group: against every rank's features). */
  at::Tensor batch_loss(const at::Tensor& image_features, const at::Tensor& text_features, const std::optional<at::Tensor>& labels);
  /** Forward under autocast, loss, backward of the (scaled) loss; returns the unscaled loss. */
  at::Tensor forward_backward(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels);
  bool contrastive_accumulation() const {
    return options_.accumulate > 1 && options_.accumulation == TrainerOptions::Accumulation::kContrastive;
  }
  /** Contrastive accumulation: the micro-batch's features, without a graph, kept with its inputs. */
  void cache_micro_batch(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels);
  /** The loss over every cached micro-batch's features, and each micro-batch's backward with its
   * share of that loss's gradient; returns the unscaled loss and empties the cache. */
  at::Tensor backward_cached_group();
  /** Adds a loss to the device-side statistics and to the pending non-finite flag; returns what was
   * recorded (with a group: the mean over the ranks). */
  at::Tensor record_loss(const at::Tensor& loss);
  /** Unscale, clip, optimizer step at lr_, scaler update, logit_scale clamp; frees the gradients. */
  DeviceUpdate update_on_device();
  void apply_update(StepResult& result, StepReads* reads);
  /** Queues the transfer of `reads`' values to the host, in one copy. */
  PendingRead queue_read(const StepReads& reads) const;
  /** Waits for a queued read and puts its values into `result`. */
  static void complete_read(PendingRead& read, StepResult& result);
  void clear_gradients();
  bool is_frozen(const std::string& name) const;
  // Any group, a world of one too: one card then runs the data-parallel step, collectives included,
  // which is how their cost is measured without a second card (bench/multi-gpu.sh 1).
  bool distributed() const { return options_.group != nullptr; }
  /** Every parameter and buffer as rank 0 has it. */
  void broadcast_weights();
  /** The gradients summed over the ranks and divided by their number, in buckets of about 25 MB. */
  void average_gradients(std::vector<at::Tensor>& grads);

  /** A micro-batch of a contrastive accumulation group; the group's update at its last. */
  StepResult contrastive_micro_step(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels, StepReads* reads);
  StepResult eager_step(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels, StepReads* reads);
  /** The graph for this batch's shapes when one is (or, now, can be) captured; else null. */
  GraphedStep* graph_for(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels);
  GraphedStep* capture(const std::string& signature, const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels);
  StepResult replay(GraphedStep& graph, const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels, StepReads* reads);
  /** Drops a held graph and its memory; false when there is none. */
  bool release_graph(const std::string& why);
  /** What a captured step reads or updates in place besides its own buffers. */
  std::vector<at::Tensor> graph_state_tensors();
  void set_lr(double lr);
  void set_graph_status(std::string status);
  /** On CUDA: waits until fewer than kStepsQueued steps are unfinished on the device. */
  void wait_for_queue_room();
  /** On CUDA: marks the end of the step just queued. */
  void note_queued_step();

  model::Clip model_;
  at::Device device_;
  TrainerOptions options_;
  std::unique_ptr<Adam> optimizer_;
  std::unique_ptr<GradScaler> scaler_;
  // Autocast's casts of the trainable product weights, done at once (off: experiment per-op-casts).
  bool cast_at_once_ = false;
  std::vector<at::Tensor> product_weights_;  // recorded by the first forward under autocast
  std::unique_ptr<FlatWeights> flat_weights_;
  std::vector<std::regex> freeze_;
  TrainerCounters counters_;
  // On the device, [1] fp32 each: they accumulate without host synchronisation.
  at::Tensor skipped_, loss_sum_, loss_count_, non_finite_run_;
  at::Tensor pending_non_finite_;  // any non-finite loss among the micro-batches of this optimizer step
  at::Tensor lr_;                  // 0-dim on the device: the next update's learning rate
  int64_t micro_in_group_ = 0;
  std::vector<CachedMicroBatch> cached_;  // contrastive accumulation: this group's micro-batches so far
  // Whether a tower has a trainable parameter: a frozen tower's features need no second forward.
  bool image_tower_trains_ = false, text_tower_trains_ = false;
  int64_t frozen_ = 0;

  std::unique_ptr<GraphedStep> graphed_;
  std::string last_signature_;
  std::atomic<int64_t> text_length_{0};  // the longest trimmed token length so far (step()); read by info()
  int64_t same_signature_steps_ = 0;
  bool graph_enabled_ = false;
  // The ends of the steps queued on a CUDA device (oldest first). Nothing else bounds how far ahead of
  // the device the host runs: a graphed step is a handful of launches, and each queued step holds its
  // batch's pinned staging block (38.5 MB at ViT-B/32 batch 256) until its copy has run, so a loader
  // faster than the device would pin an epoch of batches between two loss reads.
  std::deque<c10::Event> queued_steps_;
  std::atomic<int64_t> most_queued_steps_{0};
  std::mutex reads_mutex_;  // take_read() runs beside step(), without the model's lock
  std::deque<PendingRead> pending_reads_;
  mutable std::mutex status_mutex_;  // graph_status_ is read from the JS thread while a step runs
  std::string graph_status_;
};

}  // namespace clip::train
