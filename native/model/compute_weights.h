// Which tensor a matrix product reads for a parameter. By default the parameter itself, which
// autocast casts to bf16/fp16 at each product (a kernel per weight forward and one per gradient
// backward). A trainer that casts all its weights at once (train/flat_weights.h) publishes the casts
// for the length of a forward with a ComputeWeightScope; the model asks through compute_weight().
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <unordered_map>
#include <vector>

namespace clip::model {

struct ComputeWeights {
  std::unordered_map<const c10::TensorImpl*, at::Tensor> casts;  // parameter → what products read instead
  // When set, compute_weight() appends each new trainable parameter it is asked for, in forward order.
  std::vector<at::Tensor>* record = nullptr;
};

/** Makes `weights` (may be null: none) what compute_weight() serves on this thread until destroyed. */
class ComputeWeightScope {
 public:
  explicit ComputeWeightScope(ComputeWeights* weights);
  ~ComputeWeightScope();
  ComputeWeightScope(const ComputeWeightScope&) = delete;
  ComputeWeightScope& operator=(const ComputeWeightScope&) = delete;

 private:
  ComputeWeights* previous_;
};

/** The tensor a matrix product or convolution should read for `param` (the parameter itself, or its cast). */
at::Tensor compute_weight(const at::Tensor& param);
/** The cast this thread's scope serves for `param`, undefined when none (records nothing). */
at::Tensor cast_of(const at::Tensor& param);

/** m(x), reading the weight and bias through compute_weight(). */
at::Tensor linear(const torch::nn::Linear& m, const at::Tensor& x);
at::Tensor conv2d(const torch::nn::Conv2d& m, const at::Tensor& x);
/** m's convolution (stride, zero padding, dilation, groups) with another weight and bias. */
at::Tensor conv2d(const torch::nn::Conv2d& m, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace clip::model
