#include "train/trainer.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/autograd.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "common/experiments.h"
#include "model/activation_checkpoint.h"
#include "model/compute_weights.h"
#include "model/state_dict.h"
#include "runtime/transfer.h"
#include "train/global_loss.h"
#include "train/loss.h"

namespace clip::train {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Test hook: CLIP_NATIVE_EMULATE_OOM_ABOVE_BATCH=n (read at each step) makes a batch of more than n
// images fail as a device out of memory does, so the handling of one runs without a GPU to fill.
void check_emulated_out_of_memory(int64_t batch) {
  const char* value = std::getenv("CLIP_NATIVE_EMULATE_OOM_ABOVE_BATCH");
  if (value == nullptr || *value == '\0') return;
  const int64_t limit = std::strtoll(value, nullptr, 10);
  TORCH_CHECK_WITH(OutOfMemoryError, batch <= limit, "emulated: CUDA out of memory. Tried to allocate the activations of ", batch,
                   " images (CLIP_NATIVE_EMULATE_OOM_ABOVE_BATCH=", limit, ")");
}

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
      if (starts_with(p.key(), "visual.")) image_tower_trains_ = true;
      if (is_text_tower(p.key())) text_tower_trains_ = true;
    }
  }
  if (trainable.empty()) throw std::invalid_argument("every parameter is frozen: nothing to train");
  options_.adam.decoupled = options_.adamw;
  optimizer_ = std::make_unique<Adam>(std::move(trainable), options_.adam);
  if (options_.precision == model::Precision::kFp16) scaler_ = std::make_unique<GradScaler>(device, options_.scaler);
  cast_at_once_ = options_.precision != model::Precision::kFp32 && !experiment_enabled("per-op-casts");
  const auto stat = at::TensorOptions().dtype(at::kFloat).device(device);
  skipped_ = at::zeros({1}, stat);
  loss_sum_ = at::zeros({1}, stat);
  loss_count_ = at::zeros({1}, stat);
  non_finite_run_ = at::zeros({1}, stat);
  if (distributed()) {
    if (options_.group->backend() == "gloo" && !device.is_cpu())
      throw std::invalid_argument("the gloo backend trains on the CPU; use nccl for CUDA devices");
    broadcast_weights();
  }
  // fp32 on CUDA, as the fused kernel reads a tensor lr; fp64 on the CPU, equal to a double lr.
  lr_ = at::zeros({}, at::TensorOptions().dtype(device.is_cuda() ? at::kFloat : at::kDouble).device(device));
  if (!options_.cuda_graph) {
    graph_status_ = "off";
  } else if (distributed()) {
    graph_status_ = "off: the step's collectives are not captured in CUDA graphs yet";
  } else if (options_.accumulate != 1) {
    graph_status_ = "off: CUDA graphs need accumulate 1";
  } else if (runtime::CudaGraph::emulated()) {
    graph_enabled_ = true;  // the test hook: any device
    graph_status_ = "warming up";
  } else if (!device.is_cuda()) {
    graph_status_ = "off: CUDA graphs need a CUDA device";
  } else if (!runtime::CudaGraph::available()) {
    graph_status_ = "off: this build has no CUDA graph support";
  } else {
    graph_enabled_ = true;
    graph_status_ = "warming up";
  }
}

void Trainer::broadcast_weights() {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors;
  for (auto& p : model_->parameters()) tensors.push_back(p.data());
  for (auto& b : model_->buffers()) tensors.push_back(b);
  options_.group->broadcast(tensors, 0);
}

void Trainer::average_gradients(std::vector<at::Tensor>& grads) {
  // One all-reduce per bucket of gradients of one dtype, as DDP buckets them (about 25 MB each): fewer,
  // larger messages than one per tensor, without a copy of all gradients at once.
  constexpr int64_t kBucketBytes = 25 << 20;
  at::NoGradGuard no_grad;
  const double world = static_cast<double>(options_.group->world_size());
  size_t begin = 0;
  while (begin < grads.size()) {
    size_t end = begin;
    int64_t bytes = 0;
    while (end < grads.size() && grads[end].scalar_type() == grads[begin].scalar_type() && (end == begin || bytes < kBucketBytes)) {
      bytes += grads[end].numel() * static_cast<int64_t>(grads[end].element_size());
      ++end;
    }
    std::vector<at::Tensor> flat_parts;
    for (size_t i = begin; i < end; ++i) flat_parts.push_back(grads[i].reshape({-1}));
    std::vector<at::Tensor> bucket{at::cat(flat_parts)};
    options_.group->all_reduce_sum(bucket);
    bucket[0].div_(world);
    int64_t offset = 0;
    for (size_t i = begin; i < end; ++i) {
      const int64_t n = grads[i].numel();
      grads[i].copy_(bucket[0].narrow(0, offset, n).view_as(grads[i]));
      offset += n;
    }
    begin = end;
  }
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

StepResult Trainer::step(const at::Tensor& images_in, const at::Tensor& all_tokens, const std::optional<at::Tensor>& labels, double lr,
                         bool read_back, bool defer_read) {
  if (!(lr >= 0) || !std::isfinite(lr)) throw std::invalid_argument("learning rate must be a finite non-negative number");
  check_emulated_out_of_memory(images_in.size(0));
  set_modes();
  prepare_flat_weights();
  model_->check_images(images_in);
  model_->check_tokens(all_tokens);
  // Trimmed as inference trims (ClipImpl::trim_tokens), but never shorter than an earlier batch's: the
  // length settles on the run's longest prompt, and with it the batch shape a CUDA graph needs.
  text_length_ = std::max(text_length_.load(), model_->text_length(all_tokens));
  const at::Tensor tokens_in = all_tokens.narrow(1, 0, std::min(text_length_.load(), all_tokens.size(1))).contiguous();
  if (images_in.size(0) != tokens_in.size(0))
    throw std::invalid_argument("a batch needs as many token rows as images: got " + std::to_string(images_in.size(0)) + " images and " +
                                std::to_string(tokens_in.size(0)) + " texts");
  if (labels && labels->numel() != images_in.size(0))
    throw std::invalid_argument("labels must hold one entry per image: got " + std::to_string(labels->numel()));
  wait_for_queue_room();
  set_lr(lr);
  StepResult result;
  StepReads reads;
  StepReads* wanted = read_back ? &reads : nullptr;
  if (GraphedStep* graph = graph_for(images_in, tokens_in, labels)) {
    result = replay(*graph, images_in, tokens_in, labels, wanted);
  } else {
    const at::Tensor images = runtime::to_device(images_in, device_);
    const at::Tensor tokens = runtime::to_device(tokens_in, device_);
    std::optional<at::Tensor> device_labels;
    if (labels) device_labels = runtime::to_device(*labels, device_);
    result = contrastive_accumulation() ? contrastive_micro_step(images, tokens, device_labels, wanted)
                                        : eager_step(images, tokens, device_labels, wanted);
  }
  note_queued_step();
  if (!read_back) return result;
  // Read last, once the whole step is queued: the device works on it while the host waits.
  reads.non_finite_run = non_finite_run_;
  PendingRead read = queue_read(reads);
  if (defer_read) {
    std::lock_guard<std::mutex> lock(reads_mutex_);
    pending_reads_.push_back(std::move(read));
    result.deferred = true;
  } else {
    complete_read(read, result);
  }
  return result;
}

StepResult Trainer::take_read() {
  PendingRead read;
  {
    std::lock_guard<std::mutex> lock(reads_mutex_);
    if (pending_reads_.empty()) throw std::logic_error("takeRead(): no step has a deferred read waiting");
    read = std::move(pending_reads_.front());
    pending_reads_.pop_front();
  }
  StepResult result;
  complete_read(read, result);
  return result;
}

Trainer::PendingRead Trainer::queue_read(const StepReads& reads) const {
  PendingRead read;
  std::vector<at::Tensor> parts;
  const std::array<const at::Tensor*, 5> all{&reads.loss, &reads.found_inf, &reads.grad_norm, &reads.loss_scale, &reads.non_finite_run};
  for (size_t i = 0; i < all.size(); ++i) {
    read.present[i] = all[i]->defined();
    if (read.present[i]) parts.push_back(all[i]->detach().reshape({1}).to(at::kDouble));
  }
  if (parts.empty()) return read;
  // Gathered now, in stream order: later steps cannot have changed what this one left.
  const at::Tensor values = at::cat(parts);
  if (!values.is_cuda()) {
    read.values = values;
    return read;
  }
  read.values = at::empty(values.sizes(), values.options().device(at::kCPU).pinned_memory(true));
  read.values.copy_(values, /*non_blocking=*/true);
  read.ready.emplace(values.device().type());
  read.ready->record(c10::impl::getDeviceGuardImpl(values.device().type())->getStream(values.device()));
  return read;
}

void Trainer::complete_read(PendingRead& read, StepResult& result) {
  if (!read.values.defined()) return;
  if (read.ready) read.ready->synchronize();
  const double* v = read.values.const_data_ptr<double>();
  if (read.present[0]) {
    result.read = true;
    result.loss = *v++;
  }
  if (read.present[1]) result.skipped = *v++ != 0.0;
  if (read.present[2]) result.grad_norm = *v++;
  if (read.present[3]) result.loss_scale = *v++;
  if (read.present[4]) result.non_finite_run = *v++;
}

void Trainer::wait_for_queue_room() {
  while (queued_steps_.size() >= kStepsQueued) {
    queued_steps_.front().synchronize();
    queued_steps_.pop_front();
  }
}

void Trainer::note_queued_step() {
  if (!device_.is_cuda()) return;
  while (!queued_steps_.empty() && queued_steps_.front().query()) queued_steps_.pop_front();
  c10::Event end(device_.type());
  end.record(c10::impl::getDeviceGuardImpl(device_.type())->getStream(device_));
  queued_steps_.push_back(std::move(end));
  most_queued_steps_ = std::max<int64_t>(most_queued_steps_.load(), static_cast<int64_t>(queued_steps_.size()));
}

StepResult Trainer::eager_step(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels, StepReads* reads) {
  at::Tensor loss;
  try {
    if (graphed_ && runtime::CudaGraph::emulated_out_of_memory()) TORCH_CHECK_WITH(OutOfMemoryError, false, "emulated: out of memory beside the graph");
    loss = forward_backward(images, tokens, labels);
  } catch (const c10::OutOfMemoryError&) {
    // A graph keeps its memory pool while a batch of another shape runs eagerly (an epoch's smaller
    // last batch). When both do not fit, the graph goes: nothing of this step was applied yet, and a
    // later batch of the graph's shape captures it again.
    if (!release_graph("warming up (released to make room for a batch of another shape)")) throw;
    loss = forward_backward(images, tokens, labels);
  }
  loss = record_loss(loss);
  ++counters_.micro_steps;
  ++micro_in_group_;
  StepResult result;
  if (micro_in_group_ == options_.accumulate) apply_update(result, reads);
  if (reads) reads->loss = loss;
  return result;
}

StepResult Trainer::contrastive_micro_step(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels,
                                           StepReads* reads) {
  cache_micro_batch(images, tokens, labels);
  ++counters_.micro_steps;
  ++micro_in_group_;
  StepResult result;
  // The group's loss exists only once its last micro-batch is in: the others read none.
  if (micro_in_group_ < options_.accumulate) return result;
  const at::Tensor loss = record_loss(backward_cached_group());
  apply_update(result, reads);
  if (reads) reads->loss = loss;
  return result;
}

void Trainer::prepare_flat_weights() {
  if (product_weights_.empty() || (flat_weights_ && flat_weights_->intact())) return;
  flat_weights_ = std::make_unique<FlatWeights>(product_weights_, options_.precision == model::Precision::kFp16 ? at::kHalf : at::kBFloat16);
}

// What a forward of the step runs under: autocast, the step's compute weights, and checkpointing.
class Trainer::ForwardScope {
 public:
  explicit ForwardScope(Trainer& trainer)
      : autocast_(trainer.device_.type(), trainer.options_.precision), checkpoint_(trainer.options_.grad_checkpointing) {
    if (trainer.flat_weights_) {
      weights_ = trainer.flat_weights_->cast();
    } else if (trainer.cast_at_once_ && trainer.product_weights_.empty()) {
      weights_.record = &trainer.product_weights_;  // this forward names them; the next step gathers them
    }
    scope_.emplace(trainer.flat_weights_ || weights_.record ? &weights_ : nullptr);
  }

 private:
  model::AutocastGuard autocast_;
  model::CheckpointScope checkpoint_;
  model::ComputeWeights weights_;
  std::optional<model::ComputeWeightScope> scope_;
};

at::Tensor Trainer::batch_loss(const at::Tensor& image_features, const at::Tensor& text_features, const std::optional<at::Tensor>& labels) {
  if (distributed() && !options_.local_loss) return global_contrastive_loss(*model_, image_features, text_features, labels, *options_.group);
  model::Logits logits = model_->logits(image_features, text_features);
  return contrastive_loss(logits.per_image, logits.per_text, labels);
}

at::Tensor Trainer::forward_backward(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels) {
  at::Tensor loss;
  {
    ForwardScope scope(*this);
    loss = batch_loss(model_->encode_image(images), model_->encode_text(tokens), labels);
  }
  at::Tensor to_backward = options_.accumulate > 1 ? loss / static_cast<double>(options_.accumulate) : loss;
  if (scaler_) to_backward = scaler_->scale(to_backward);
  to_backward.backward();
  if (flat_weights_) flat_weights_->publish_gradients();
  return loss.detach();
}

void Trainer::cache_micro_batch(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels) {
  if (!cached_.empty() && cached_.front().labels.has_value() != labels.has_value())
    throw std::invalid_argument("the micro-batches of one accumulation group must all have labels or all have none");
  // Kept past this call: on the CPU the inputs may still be the caller's buffers (to_device copies
  // nothing there), which the caller refills with the next batch.
  const auto own = [](const at::Tensor& t) { return t.is_cpu() ? t.clone() : t; };
  CachedMicroBatch batch{own(images), own(tokens), labels ? std::optional<at::Tensor>(own(*labels)) : std::nullopt, {}, {}};
  // The statistics a train-mode BatchNorm gathers here come again when the micro-batch runs with its
  // gradient: this forward leaves them as they were, so each micro-batch updates them once.
  const model::RunningStatistics statistics(*model_);
  {
    at::NoGradGuard no_grad;
    ForwardScope scope(*this);
    batch.image_features = model_->encode_image(images);
    batch.text_features = model_->encode_text(tokens);
  }
  statistics.restore();
  cached_.push_back(std::move(batch));
}

at::Tensor Trainer::backward_cached_group() {
  std::vector<at::Tensor> image_parts, text_parts, label_parts;
  for (const auto& b : cached_) {
    image_parts.push_back(b.image_features);
    text_parts.push_back(b.text_features);
    if (b.labels) label_parts.push_back(b.labels->to(at::kLong));
  }
  const at::Tensor images = at::cat(image_parts).requires_grad_(true);
  const at::Tensor texts = at::cat(text_parts).requires_grad_(true);
  std::optional<at::Tensor> labels;
  if (!label_parts.empty()) labels = at::cat(label_parts);
  at::Tensor loss;
  {
    ForwardScope scope(*this);
    loss = batch_loss(images, texts, labels);
  }
  // The loss of the whole group is a mean over its rows already: no division by the micro-batches.
  (scaler_ ? scaler_->scale(loss) : loss).backward();
  // A tower runs again only where it has something to train (or, for the image tower, train-mode
  // BatchNorm statistics to gather once).
  const bool image_again = image_tower_trains_ || (options_.batchnorm_train && !options_.lock_image && !model_->batch_norms().empty());
  int64_t row = 0;
  for (auto& b : cached_) {
    const int64_t rows = b.images.size(0);
    std::vector<at::Tensor> features, gradients;
    {
      ForwardScope scope(*this);
      if (image_again) features.push_back(model_->encode_image(b.images));
      if (text_tower_trains_) features.push_back(model_->encode_text(b.tokens));
    }
    if (image_again) gradients.push_back(images.grad().narrow(0, row, rows));
    if (text_tower_trains_) gradients.push_back(texts.grad().narrow(0, row, rows));
    // Only outputs that reach a trainable parameter take part (not a tower run for its statistics alone).
    std::vector<at::Tensor> roots, root_gradients;
    for (size_t i = 0; i < features.size(); ++i) {
      if (!features[i].requires_grad()) continue;
      roots.push_back(features[i]);
      root_gradients.push_back(gradients[i]);
    }
    if (!roots.empty()) torch::autograd::backward(roots, root_gradients);
    if (flat_weights_) flat_weights_->publish_gradients();
    row += rows;
  }
  cached_.clear();
  return loss.detach();
}

at::Tensor Trainer::record_loss(const at::Tensor& loss) {
  // Everything stays on the device: a non-finite loss is not tested on the host but turned into a flag
  // that makes the fused optimizer skip the update, as the fp16 scaler does for gradients.
  at::NoGradGuard no_grad;
  at::Tensor value = loss.reshape({1});
  if (distributed()) {
    // The global batch's loss, the mean of the ranks': a non-finite one on any rank makes it non-finite
    // on all, so every rank records it and skips the same step.
    std::vector<at::Tensor> sum{value.to(at::kFloat).clone()};
    options_.group->all_reduce_sum(sum);
    value = sum[0] / static_cast<double>(options_.group->world_size());
  }
  const at::Tensor non_finite = at::logical_not(at::isfinite(value)).to(at::kFloat);
  loss_sum_.add_(at::where(non_finite > 0, at::zeros_like(value), value));
  loss_count_.add_(1.0 - non_finite);
  non_finite_run_.add_(1.0).mul_(non_finite);
  pending_non_finite_ = pending_non_finite_.defined() ? at::maximum(pending_non_finite_, non_finite) : non_finite;
  return value.reshape(loss.sizes());
}

StepResult Trainer::flush(double lr, bool read_back) {
  StepResult result;
  if (micro_in_group_ == 0) return result;
  set_lr(lr);
  StepReads reads;
  if (!cached_.empty()) {
    const at::Tensor loss = record_loss(backward_cached_group());
    if (read_back) reads.loss = loss;
  }
  apply_update(result, read_back ? &reads : nullptr);
  if (read_back) {
    PendingRead read = queue_read(reads);
    complete_read(read, result);
  }
  return result;
}

void Trainer::apply_update(StepResult& result, StepReads* reads) {
  micro_in_group_ = 0;
  result.boundary = true;
  if (scaler_ && reads) reads->loss_scale = scaler_->scale_tensor().clone();
  const DeviceUpdate update = update_on_device();
  ++counters_.optimizer_steps;
  if (reads) {
    reads->found_inf = update.found_inf;
    reads->grad_norm = update.grad_norm;
  }
}

Trainer::DeviceUpdate Trainer::update_on_device() {
  std::vector<at::Tensor> grads;
  for (auto& s : optimizer_->states()) {
    if (s.param.grad().defined()) grads.push_back(s.param.grad());
  }
  if (distributed()) average_gradients(grads);
  DeviceUpdate update;
  update.found_inf = pending_non_finite_;
  pending_non_finite_ = at::Tensor();
  if (scaler_) update.found_inf = at::maximum(update.found_inf, scaler_->unscale(grads));
  if (options_.grad_clip_norm > 0 && !grads.empty()) {
    at::NoGradGuard no_grad;
    update.grad_norm = at::stack(at::_foreach_norm(grads, 2)).norm(2);
    at::Tensor coef = (options_.grad_clip_norm / (update.grad_norm + 1e-6)).clamp_max(1.0);
    at::_foreach_mul_(grads, coef);
  }
  optimizer_->step(lr_, update.found_inf);
  if (scaler_) scaler_->update(update.found_inf);
  {
    at::NoGradGuard no_grad;
    skipped_.add_(update.found_inf);
    if (options_.clamp_logit_scale) model_->logit_scale.clamp_(0.0, std::log(100.0));
  }
  clear_gradients();
  return update;
}

void Trainer::set_lr(double lr) {
  at::NoGradGuard no_grad;
  lr_.fill_(lr);
}

void Trainer::clear_gradients() {
  for (auto& s : optimizer_->states()) s.param.mutable_grad() = at::Tensor();
  if (flat_weights_) flat_weights_->clear_gradient();
}

// ---- CUDA graph of the whole step ----------------------------------------------------------------

namespace {

// Eager steps with one batch shape before that shape is captured: the first steps pay for lazy
// initialisation (cuBLAS/cuDNN handles, kernel selection), which must not happen during capture.
constexpr int64_t kEagerStepsBeforeCapture = 3;

std::string input_signature(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels) {
  std::string sig = c10::str(images.sizes(), images.scalar_type(), tokens.sizes(), tokens.scalar_type());
  if (labels) sig += c10::str("labels", labels->sizes(), labels->scalar_type());
  return sig;
}

at::Tensor device_buffer(const at::Tensor& like, at::Device device) {
  return at::empty(like.sizes(), like.options().device(device).memory_format(at::MemoryFormat::Contiguous));
}

}  // namespace

struct Trainer::GraphedStep {
  std::string signature;
  runtime::CudaGraph graph;
  at::Tensor images, tokens;          // static inputs: each replay reads what was copied here
  std::optional<at::Tensor> labels;
  at::Tensor loss, found_inf, grad_norm;  // static outputs of the last replay
  // Every tensor the graph reads or updates in place, and where its data was at capture. The handles
  // see a storage swapped under them (set_data), which a replay would not.
  std::vector<at::Tensor> watched;
  std::vector<const void*> addresses;

  bool storage_moved() const {
    for (size_t i = 0; i < watched.size(); ++i) {
      if (watched[i].data_ptr() != addresses[i]) return true;
    }
    return false;
  }
};

Trainer::~Trainer() = default;

bool Trainer::release_graph(const std::string& why) {
  if (!graphed_) return false;
  clear_gradients();  // of a step that did not finish
  graphed_.reset();
  last_signature_.clear();
  same_signature_steps_ = 0;
  runtime::CudaGraph::release_cached_memory();
  set_graph_status(why);
  return true;
}

std::string Trainer::graph_status() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  return graph_status_;
}

void Trainer::set_graph_status(std::string status) {
  std::lock_guard<std::mutex> lock(status_mutex_);
  graph_status_ = std::move(status);
}

std::vector<at::Tensor> Trainer::graph_state_tensors() {
  std::vector<at::Tensor> out = model_->parameters();
  for (const auto& b : model_->buffers()) out.push_back(b);
  for (const auto& s : optimizer_->states()) {
    out.push_back(s.exp_avg);
    out.push_back(s.exp_avg_sq);
    out.push_back(s.step);
  }
  for (const auto& t : {skipped_, loss_sum_, loss_count_, non_finite_run_, lr_}) out.push_back(t);
  if (scaler_) {
    out.push_back(scaler_->scale_tensor());
    out.push_back(scaler_->growth_tracker());
  }
  return out;
}

Trainer::GraphedStep* Trainer::graph_for(const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels) {
  if (!graph_enabled_) return nullptr;
  const std::string signature = input_signature(images, tokens, labels);
  if (graphed_ && graphed_->signature == signature) {
    // A graph replays fixed addresses: if weights were replaced rather than updated in place, capture anew.
    if (!graphed_->storage_moved()) return graphed_.get();
    release_graph("warming up (weights moved since the capture)");
  }
  // Another shape runs eagerly (an epoch's smaller last batch); one that keeps coming (longer prompts
  // than any before) is captured in place of the graph held.
  same_signature_steps_ = signature == last_signature_ ? same_signature_steps_ + 1 : 1;
  last_signature_ = signature;
  if (same_signature_steps_ <= kEagerStepsBeforeCapture) return nullptr;
  release_graph("warming up");
  try {
    return capture(signature, images, tokens, labels);
  } catch (const std::exception& e) {
    // Nothing ran: capture records kernels without executing them. Undo the host-side traces and go on
    // eagerly for the rest of the run.
    graphed_.reset();
    pending_non_finite_ = at::Tensor();
    clear_gradients();
    graph_enabled_ = false;
    set_graph_status(std::string("failed, running eagerly: ") + e.what());
    return nullptr;
  }
}

Trainer::GraphedStep* Trainer::capture(const std::string& signature, const at::Tensor& images, const at::Tensor& tokens,
                                      const std::optional<at::Tensor>& labels) {
  auto g = std::make_unique<GraphedStep>();
  g->signature = signature;
  g->images = device_buffer(images, device_);
  g->tokens = device_buffer(tokens, device_);
  g->images.copy_(runtime::staged_for(images, device_), /*non_blocking=*/true);
  g->tokens.copy_(runtime::staged_for(tokens, device_), /*non_blocking=*/true);
  if (labels) {
    g->labels = device_buffer(*labels, device_);
    g->labels->copy_(*labels, /*non_blocking=*/true);
  }
  // The step lives in graphed_ from here on: the lambdas hold its address, which stays put.
  GraphedStep* step = g.get();
  auto warmup = [this, step] {
    // The warm-up's forward and backward are thrown away; BatchNorm in eval mode keeps it from moving
    // the running statistics.
    for (auto& bn : model_->batch_norms()) bn->eval();
    forward_backward(step->images, step->tokens, step->labels);
    clear_gradients();
    set_modes();
  };
  auto body = [this, step] {
    step->loss = forward_backward(step->images, step->tokens, step->labels);
    record_loss(step->loss);
    DeviceUpdate update = update_on_device();
    step->found_inf = update.found_inf;
    step->grad_norm = update.grad_norm;
  };
  graphed_ = std::move(g);
  step->graph.capture(device_, warmup, body);
  step->watched = graph_state_tensors();
  for (const auto& t : step->watched) step->addresses.push_back(t.data_ptr());
  set_graph_status(runtime::CudaGraph::emulated() ? "captured (emulated)" : "captured");
  return step;
}

StepResult Trainer::replay(GraphedStep& g, const at::Tensor& images, const at::Tensor& tokens, const std::optional<at::Tensor>& labels,
                           StepReads* reads) {
  g.images.copy_(runtime::staged_for(images, device_), /*non_blocking=*/true);
  g.tokens.copy_(runtime::staged_for(tokens, device_), /*non_blocking=*/true);
  if (labels) g.labels->copy_(*labels, /*non_blocking=*/true);
  StepResult result;
  result.boundary = true;
  if (scaler_ && reads) reads->loss_scale = scaler_->scale_tensor().clone();
  g.graph.replay();
  ++counters_.micro_steps;
  ++counters_.optimizer_steps;
  // The graph's outputs, read before the next replay overwrites them (the transfer follows on the stream).
  if (reads) *reads = {g.loss, g.found_inf, g.grad_norm, reads->loss_scale};
  return result;
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
