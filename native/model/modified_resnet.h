// The ResNet image tower of openai/CLIP (`ModifiedResNet`): three-conv stem, anti-aliased
// bottlenecks (avg-pool before strided convolutions) and attention pooling.
#pragma once
#include <torch/nn.h>

#include "common/experiments.h"

namespace clip::model {

/** The ResNet's other code paths (native/common/experiments.h), read when a module is built. */
struct ResNetPaths {
  CudaDefault fold{"fold-batchnorm", "separate-batchnorm"};  // frozen BatchNorm folded into the convolution before it
  CudaDefault pool_by_mean{"pool-by-mean", "avg-pool2d"};    // the anti-aliasing pools as means over a view
  CudaDefault bias_relu{"bias-relu-kernel", "separate-bias-relu"};  // with the fold: its shift, the residual and the ReLU in one kernel
};

/** bn(conv(x)), folded into one convolution when the BatchNorm is frozen and paths.fold is taken (modified_resnet.cc). */
at::Tensor conv_bn(torch::nn::Conv2d conv, torch::nn::BatchNorm2d bn, const at::Tensor& x, const ResNetPaths& paths);
/** avg_pool2d(x, s), as a mean over a view where paths.pool_by_mean is taken and x is channels-last (modified_resnet.cc). */
at::Tensor avg_pool(const at::Tensor& x, int64_t s, const ResNetPaths& paths);

/** The reference's `downsample` Sequential: "-1" avg-pool (no parameters), "0" conv, "1" BatchNorm. */
class DownsampleImpl : public torch::nn::Module {
 public:
  DownsampleImpl(int64_t inplanes, int64_t outplanes, int64_t stride);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};

 private:
  int64_t stride_;
  ResNetPaths paths_;
};
TORCH_MODULE(Downsample);

class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  Downsample downsample{nullptr};

 private:
  int64_t stride_;
  ResNetPaths paths_;
};
TORCH_MODULE(Bottleneck);

class AttentionPool2dImpl : public torch::nn::Module {
 public:
  AttentionPool2dImpl(int64_t spatial_dim, int64_t embed_dim, int64_t heads, int64_t output_dim);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor positional_embedding;
  torch::nn::Linear k_proj{nullptr}, q_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(AttentionPool2d);

class ModifiedResNetImpl : public torch::nn::Module {
 public:
  ModifiedResNetImpl(const std::vector<int64_t>& layers, int64_t output_dim, int64_t heads, int64_t resolution, int64_t width);
  at::Tensor forward(const at::Tensor& images);
  void initialize_like_reference();
  /** BatchNorm layers, for keeping them in eval mode while the rest trains. */
  std::vector<torch::nn::BatchNorm2d> batch_norms();

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  std::array<torch::nn::Sequential, 4> stages;
  AttentionPool2d attnpool{nullptr};

 private:
  torch::nn::Sequential make_stage(int64_t& inplanes, int64_t planes, int64_t blocks, int64_t stride);
  ResNetPaths paths_;
};
TORCH_MODULE(ModifiedResNet);

}  // namespace clip::model
