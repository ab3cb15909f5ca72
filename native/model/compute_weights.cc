#include "model/compute_weights.h"

#include <algorithm>

namespace clip::model {
namespace {
thread_local ComputeWeights* current = nullptr;
}  // namespace

ComputeWeightScope::ComputeWeightScope(ComputeWeights* weights) : previous_(current) { current = weights; }
ComputeWeightScope::~ComputeWeightScope() { current = previous_; }

at::Tensor compute_weight(const at::Tensor& param) {
  ComputeWeights* weights = current;
  if (weights == nullptr) return param;
  if (weights->record != nullptr) {
    auto& seen = *weights->record;
    const bool known = std::any_of(seen.begin(), seen.end(), [&](const at::Tensor& t) { return t.is_same(param); });
    if (param.requires_grad() && !known) seen.push_back(param);
    return param;
  }
  const auto it = weights->casts.find(param.unsafeGetTensorImpl());
  return it == weights->casts.end() ? param : it->second;
}

at::Tensor cast_of(const at::Tensor& param) {
  if (current == nullptr) return at::Tensor();
  const auto it = current->casts.find(param.unsafeGetTensorImpl());
  return it == current->casts.end() ? at::Tensor() : it->second;
}

at::Tensor linear(const torch::nn::Linear& m, const at::Tensor& x) {
  return at::linear(x, compute_weight(m->weight), m->bias.defined() ? compute_weight(m->bias) : at::Tensor());
}

at::Tensor conv2d(const torch::nn::Conv2d& m, const at::Tensor& x) {
  return conv2d(m, x, compute_weight(m->weight), m->bias.defined() ? compute_weight(m->bias) : at::Tensor());
}

at::Tensor conv2d(const torch::nn::Conv2d& m, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const auto& o = m->options;
  TORCH_CHECK(std::holds_alternative<torch::ExpandingArray<2>>(o.padding()) && std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()),
              "conv2d: only numeric zero padding is supported here");
  return at::conv2d(x, weight, bias, o.stride(), std::get<torch::ExpandingArray<2>>(o.padding()), o.dilation(), o.groups());
}

}  // namespace clip::model
