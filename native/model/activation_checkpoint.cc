#include "model/activation_checkpoint.h"

#include <ATen/autocast_mode.h>
#include <torch/autograd.h>
#include <torch/custom_class.h>
#include <torch/nn/modules/batchnorm.h>

#include "model/compute_weights.h"

namespace clip::model {
namespace {

thread_local bool enabled = false;

/** Autocast's switches for one device type, as a forward found them. */
struct AutocastState {
  c10::DeviceType device = c10::DeviceType::CPU;
  bool on = false;
  at::ScalarType dtype = at::kFloat;

  static AutocastState of(c10::DeviceType device) {
    return {device, at::autocast::is_autocast_enabled(device), at::autocast::get_autocast_dtype(device)};
  }
};

/** Puts autocast back into a recorded state for a recomputation, with its weight cache off. */
class RestoredAutocast {
 public:
  explicit RestoredAutocast(const AutocastState& state) : saved_(AutocastState::of(state.device)), cache_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_enabled(state.device, state.on);
    at::autocast::set_autocast_dtype(state.device, state.dtype);
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~RestoredAutocast() {
    at::autocast::set_autocast_cache_enabled(cache_);
    at::autocast::set_autocast_enabled(saved_.device, saved_.on);
    at::autocast::set_autocast_dtype(saved_.device, saved_.dtype);
  }
  RestoredAutocast(const RestoredAutocast&) = delete;
  RestoredAutocast& operator=(const RestoredAutocast&) = delete;

 private:
  AutocastState saved_;
  bool cache_;
};

/**
 * What backward needs besides the saved inputs. Autocast's weight cache stays off while the segment
 * runs: a cast cached without grad in the forward must not be served to the grad-enabled recomputation.
 */
struct SegmentRecord : torch::CustomClassHolder {
  Segment segment;
  torch::nn::Module* module = nullptr;
  AutocastState autocast;
  std::vector<at::Tensor> params;  // the module's parameters that take a gradient
  std::vector<at::Tensor> casts;   // params[i]'s compute weight in the forward, where it had a cast
};

at::Tensor detached_leaf(const at::Tensor& t) {
  at::Tensor leaf = t.detach();
  leaf.requires_grad_(t.requires_grad());
  return leaf;
}

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // Inputs, in order: the record (not a tensor), the segment's inputs, the casts, the parameters. The
  // casts and parameters are inputs so that their gradients come back through this node.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, c10::intrusive_ptr<SegmentRecord> record,
                                                at::TensorList inputs, at::TensorList casts, at::TensorList params) {
    ctx->save_for_backward(inputs.vec());
    const bool cache = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_cache_enabled(false);
    std::vector<at::Tensor> outputs;
    try {
      outputs = record->segment(inputs.vec());
    } catch (...) {
      at::autocast::set_autocast_cache_enabled(cache);
      throw;
    }
    at::autocast::set_autocast_cache_enabled(cache);
    ctx->saved_data["record"] = at::IValue::make_capsule(record);
    return outputs;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grad_outputs) {
    auto record = c10::static_intrusive_pointer_cast<SegmentRecord>(ctx->saved_data["record"].toCapsule());
    std::vector<at::Tensor> inputs;
    for (const auto& x : ctx->get_saved_variables()) inputs.push_back(detached_leaf(x));
    std::vector<at::Tensor> cast_leaves;
    ComputeWeights weights;
    for (size_t i = 0, c = 0; i < record->params.size(); ++i) {
      if (!record->casts[i].defined()) continue;
      cast_leaves.push_back(detached_leaf(record->casts[i]));
      weights.casts[record->params[i].unsafeGetTensorImpl()] = cast_leaves[c++];
    }
    std::vector<at::Tensor> outputs;
    {
      const RunningStatistics statistics(*record->module);
      at::AutoGradMode grad(true);
      RestoredAutocast autocast(record->autocast);
      ComputeWeightScope scope(&weights);
      outputs = record->segment(inputs);
      statistics.restore();
    }
    return gradients(*record, outputs, grad_outputs, inputs, cast_leaves);
  }

 private:
  /** The gradients of the recomputed outputs with respect to every input of the node, in its order. */
  static torch::autograd::variable_list gradients(const SegmentRecord& record, const std::vector<at::Tensor>& outputs,
                                                  const torch::autograd::variable_list& grad_outputs, const std::vector<at::Tensor>& inputs,
                                                  const std::vector<at::Tensor>& cast_leaves) {
    torch::autograd::variable_list roots, root_grads, wrt;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (grad_outputs[i].defined() && outputs[i].requires_grad()) {
        roots.push_back(outputs[i]);
        root_grads.push_back(grad_outputs[i]);
      }
    }
    std::vector<const at::Tensor*> all;
    for (const auto& t : inputs) all.push_back(&t);
    for (const auto& t : cast_leaves) all.push_back(&t);
    for (const auto& t : record.params) all.push_back(&t);
    std::vector<size_t> asked;
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i]->requires_grad()) {
        asked.push_back(i);
        wrt.push_back(*all[i]);
      }
    }
    torch::autograd::variable_list result(1 + all.size());  // the record's slot stays undefined
    if (roots.empty() || wrt.empty()) return result;
    const auto grads = torch::autograd::grad(roots, wrt, root_grads, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < asked.size(); ++k) result[1 + asked[k]] = grads[k];
    return result;
  }
};

}  // namespace

RunningStatistics::RunningStatistics(torch::nn::Module& module) {
  for (const auto& m : module.modules(/*include_self=*/true)) {
    if (!m->is_training() || !std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) continue;
    for (const auto& b : m->buffers(/*recurse=*/false)) saved_.emplace_back(b, b.clone());
  }
}

// Through variable_data(), which has its own version counter: a recomputed graph saved these tensors,
// and a train-mode BatchNorm's backward reads its batch statistics, not the running ones.
void RunningStatistics::restore() const {
  at::NoGradGuard no_grad;
  for (const auto& [buffer, value] : saved_) buffer.variable_data().copy_(value);
}

CheckpointScope::CheckpointScope(bool on) : previous_(enabled) { enabled = on; }
CheckpointScope::~CheckpointScope() { enabled = previous_; }

bool checkpointing() { return enabled && at::GradMode::is_enabled(); }

std::vector<at::Tensor> checkpointed(const Segment& segment, const std::vector<at::Tensor>& inputs, torch::nn::Module& module) {
  auto record = c10::make_intrusive<SegmentRecord>();
  record->segment = segment;
  record->module = &module;
  record->autocast = AutocastState::of(inputs.at(0).device().type());
  std::vector<at::Tensor> casts;
  for (const auto& p : module.parameters()) {
    if (!p.requires_grad()) continue;
    record->params.push_back(p);
    record->casts.push_back(cast_of(p));
    if (record->casts.back().defined()) casts.push_back(record->casts.back());
  }
  // As TensorLists: apply() counts a std::vector as a non-tensor argument, which would cut the graph.
  return CheckpointFunction::apply(record, at::TensorList(inputs), at::TensorList(casts), at::TensorList(record->params));
}

}  // namespace clip::model
