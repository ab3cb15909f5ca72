#include "train/flat_weights.h"

#include <ATen/core/grad_mode.h>

#include <numeric>

namespace clip::train {
namespace {

/**
 * `flat` (1-D, like.numel() elements) seen with like's shape and memory order: a view permuted back, so
 * autograd carries gradients through without copies (as_strided's backward would allocate the whole
 * buffer). The strides of size-1 dimensions may differ from like's. `like` must be non-overlapping
 * and dense (contiguous or channels-last).
 */
at::Tensor view_like(const at::Tensor& flat, const at::Tensor& like) {
  const int64_t dims = like.dim();
  std::vector<int64_t> order(dims);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return like.stride(a) > like.stride(b); });
  std::vector<int64_t> memory_sizes(dims), inverse(dims);
  for (int64_t i = 0; i < dims; ++i) {
    memory_sizes[i] = like.size(order[i]);
    inverse[order[i]] = i;
  }
  return flat.view(memory_sizes).permute(inverse);
}

/** The same memory with exactly like's sizes and strides, for what autograd never differentiates: the
 * fused optimizer requires a gradient's strides to equal its parameter's, size-1 dimensions included. */
at::Tensor exactly_like(const at::Tensor& buffer, int64_t offset, const at::Tensor& like) {
  return buffer.as_strided(like.sizes(), like.strides(), buffer.storage_offset() + offset);
}

}  // namespace

FlatWeights::FlatWeights(const std::vector<at::Tensor>& params, at::ScalarType compute_type) : compute_type_(compute_type) {
  if (params.empty()) return;
  const at::Device device = params.front().device();
  int64_t total = 0;
  for (const auto& p : params) {
    if (p.scalar_type() != at::kFloat || p.device() != device || !p.is_non_overlapping_and_dense()) continue;
    params_.push_back(p);
    numels_.push_back(p.numel());
    offsets_.push_back(total);
    total += p.numel();
  }
  at::NoGradGuard no_grad;
  master_ = at::empty({total}, params.front().options().dtype(at::kFloat));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor slot = exactly_like(master_, offsets_[i], params_[i]);
    slot.copy_(params_[i].detach());
    params_[i].set_data(slot);
    addresses_.push_back(params_[i].data_ptr());
  }
  master_.requires_grad_(true);
}

bool FlatWeights::intact() const {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].data_ptr() != addresses_[i]) return false;
  }
  return true;
}

model::ComputeWeights FlatWeights::cast() const {
  model::ComputeWeights weights;
  if (params_.empty()) return weights;
  // split_with_sizes, not narrow: its backward is one concatenation of the gradients, where each
  // narrow's would be a zero-filled buffer of the whole size.
  const std::vector<at::Tensor> parts = master_.to(compute_type_).split_with_sizes(numels_);
  for (size_t i = 0; i < params_.size(); ++i) weights.casts.emplace(params_[i].unsafeGetTensorImpl(), view_like(parts[i], params_[i]));
  return weights;
}

void FlatWeights::publish_gradients() {
  if (!master_.defined() || !master_.grad().defined()) return;
  at::NoGradGuard no_grad;
  const at::Tensor& grad = master_.grad();
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor slice = exactly_like(grad, offsets_[i], params_[i]);
    const at::Tensor& own = params_[i].grad();
    // Accumulating micro-batches: the parameter already holds this slice, and autograd added into it.
    if (own.defined() && own.data_ptr() != slice.data_ptr()) slice.add_(own);
    params_[i].mutable_grad() = slice;
  }
}

void FlatWeights::clear_gradient() {
  if (master_.defined()) master_.mutable_grad() = at::Tensor();
}

}  // namespace clip::train
