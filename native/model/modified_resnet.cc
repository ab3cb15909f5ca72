#include "model/modified_resnet.h"

#include <cmath>

#include "common/experiments.h"
#include "model/bias_relu_kernel.h"
#include "model/activation_checkpoint.h"
#include "model/compute_weights.h"

namespace clip::model {
namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

}  // namespace

// The anti-aliasing pools (kernel = stride = s, no padding) average disjoint s×s windows: on a
// channels-last tensor that is a mean over two axes of a view, which CUDA reduces at memory speed and
// whose backward is a broadcast. PyTorch's NHWC avg_pool2d backward is slow there (the measurements:
// docs/performance.md, bench/results/levers.md round five). CUDA's default; experiment avg-pool2d
// keeps avg_pool2d.
at::Tensor avg_pool(const at::Tensor& x, int64_t s, const ResNetPaths& paths) {
  const bool by_mean = paths.pool_by_mean.taken(x.is_cuda()) && x.is_contiguous(at::MemoryFormat::ChannelsLast) && x.size(2) % s == 0 && x.size(3) % s == 0;
  if (!by_mean) return at::avg_pool2d(x, s);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2) / s, w = x.size(3) / s;
  return x.permute({0, 2, 3, 1}).view({n, h, s, w, s, c}).mean({2, 4}).permute({0, 3, 1, 2});
}

// A frozen BatchNorm (eval mode: running statistics) is an affine map per output channel, so it folds
// into the convolution before it: bn(conv(x, W)) = conv(x, W·s) + t with s = γ/√(var+ε) and
// t = β − mean·s, made from the trainable γ and β at every call, so their gradients still arrive. On
// CUDA, BatchNorm's own pass over every activation, forward and backward (a large share of RN50's
// step), becomes a bias and a weight-sized product (the measurements: docs/performance.md, levers.md
// round five). CUDA's default; experiment separate-batchnorm keeps them apart. With batch statistics (train mode) the two stay
// apart. Returns {W·s, t}.
namespace {
std::pair<at::Tensor, at::Tensor> folded(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn) {
  const at::Tensor scale = bn->weight * at::rsqrt(bn->running_var + bn->options.eps());
  return {conv->weight * scale.view({-1, 1, 1, 1}), bn->bias - bn->running_mean * scale};
}
}  // namespace

at::Tensor conv_bn(torch::nn::Conv2d conv, torch::nn::BatchNorm2d bn, const at::Tensor& x, const ResNetPaths& paths) {
  if (!paths.fold.taken(x.is_cuda()) || bn->is_training()) return bn(conv2d(conv, x));
  const auto [weight, shift] = folded(conv, bn);
  // The shift added in place, not as the convolution's bias, which autocast would round to bf16 first:
  // the same separate pass ATen makes of a bias on CUDA, with the shift exact as BatchNorm's is.
  return conv2d(conv, x, weight, at::Tensor()).add_(shift.view({1, -1, 1, 1}));
}

// With the BatchNorm folded: ATen adds a convolution's bias in a pass of its own, whose broadcast keeps
// it off the vectorised path, then the residual, then the ReLU, each a pass over the activations; one
// kernel pass does the three (native/kernels/bias_relu.cu), and the bias gradient comes from the
// column-sum kernel (the measurements: docs/performance.md, levers.md round six). CUDA's default
// ("bias-relu-kernel"); experiment separate-bias-relu keeps the three passes.
namespace {
at::Tensor conv_bn_relu(torch::nn::Conv2d conv, torch::nn::BatchNorm2d bn, const at::Tensor& x, const ResNetPaths& paths, const at::Tensor& residual = {}) {
  if (!paths.bias_relu.taken(x.is_cuda()) || !paths.fold.taken(x.is_cuda()) || bn->is_training()) {
    const at::Tensor out = conv_bn(conv, bn, x, paths);
    return at::relu(residual.defined() ? out + residual : out);
  }
  const auto [weight, shift] = folded(conv, bn);
  const at::Tensor y = conv2d(conv, x, weight, at::Tensor());
  if (auto out = bias_relu_by_kernel(y, shift, residual)) return *std::move(out);
  // Where the kernel does not run, its arithmetic: fp32 sums, one rounding to the activation's type.
  at::Tensor sum = y.to(at::kFloat) + shift.view({1, -1, 1, 1});
  if (residual.defined()) sum = sum + residual.to(at::kFloat);
  return at::relu(sum).to(y.scalar_type());
}
}  // namespace

DownsampleImpl::DownsampleImpl(int64_t inplanes, int64_t outplanes, int64_t stride)
    : stride_(stride) {
  conv = register_module("0", torch::nn::Conv2d(torch::nn::Conv2dOptions(inplanes, outplanes, 1).bias(false)));
  bn = register_module("1", torch::nn::BatchNorm2d(outplanes));
}

at::Tensor DownsampleImpl::forward(const at::Tensor& x) {
  at::Tensor h = stride_ > 1 ? avg_pool(x, stride_, paths_) : x;
  return conv_bn(conv, bn, h, paths_);
}

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride)
    : stride_(stride) {
  conv1 = register_module("conv1", conv(inplanes, planes, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * kExpansion));
  if (stride > 1 || inplanes != planes * kExpansion) downsample = register_module("downsample", Downsample(inplanes, planes * kExpansion, stride));
}

at::Tensor BottleneckImpl::forward(const at::Tensor& x) {
  at::Tensor out = conv_bn_relu(conv1, bn1, x, paths_);
  out = conv_bn_relu(conv2, bn2, out, paths_);
  if (stride_ > 1) out = avg_pool(out, stride_, paths_);
  return conv_bn_relu(conv3, bn3, out, paths_, downsample ? downsample(x) : x);
}

AttentionPool2dImpl::AttentionPool2dImpl(int64_t spatial_dim, int64_t embed_dim, int64_t heads, int64_t output_dim) : heads_(heads) {
  positional_embedding = register_parameter("positional_embedding", torch::randn({spatial_dim * spatial_dim + 1, embed_dim}) /
                                                                        std::sqrt(static_cast<double>(embed_dim)));
  k_proj = register_module("k_proj", torch::nn::Linear(embed_dim, embed_dim));
  q_proj = register_module("q_proj", torch::nn::Linear(embed_dim, embed_dim));
  v_proj = register_module("v_proj", torch::nn::Linear(embed_dim, embed_dim));
  c_proj = register_module("c_proj", torch::nn::Linear(embed_dim, output_dim));
}

at::Tensor AttentionPool2dImpl::forward(const at::Tensor& input) {
  const int64_t n = input.size(0), c = input.size(1);
  at::Tensor x = input.flatten(2).transpose(1, 2);                       // [N, HW, C]
  x = at::cat({x.mean(1, /*keepdim=*/true), x}, 1);                      // [N, HW+1, C]
  x = x + positional_embedding.to(x.scalar_type());
  const int64_t l = x.size(1), d = c / heads_;
  // Only the mean token's output is used, so only it is a query (the keys still see every position).
  at::Tensor q = linear(q_proj, x.narrow(1, 0, 1)).view({n, 1, heads_, d}).transpose(1, 2);
  at::Tensor k = linear(k_proj, x).view({n, l, heads_, d}).transpose(1, 2);
  at::Tensor v = linear(v_proj, x).view({n, l, heads_, d}).transpose(1, 2);
  at::Tensor out = at::scaled_dot_product_attention(q, k, v);            // [N, H, 1, d]
  return linear(c_proj, out.transpose(1, 2).reshape({n, c}));
}

ModifiedResNetImpl::ModifiedResNetImpl(const std::vector<int64_t>& layers, int64_t output_dim, int64_t heads, int64_t resolution,
                                       int64_t width)
{
  conv1 = register_module("conv1", conv(3, width / 2, 3, 2, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(width / 2));
  conv2 = register_module("conv2", conv(width / 2, width / 2, 3, 1, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(width / 2));
  conv3 = register_module("conv3", conv(width / 2, width, 3, 1, 1));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(width));
  int64_t inplanes = width;
  for (int i = 0; i < 4; ++i) {
    stages[i] = register_module("layer" + std::to_string(i + 1), make_stage(inplanes, width << i, layers[i], i == 0 ? 1 : 2));
  }
  attnpool = register_module("attnpool", AttentionPool2d(resolution / 32, width * 32, heads, output_dim));
  initialize_like_reference();
}

torch::nn::Sequential ModifiedResNetImpl::make_stage(int64_t& inplanes, int64_t planes, int64_t blocks, int64_t stride) {
  torch::nn::Sequential stage;
  stage->push_back(Bottleneck(inplanes, planes, stride));
  inplanes = planes * BottleneckImpl::kExpansion;
  for (int64_t i = 1; i < blocks; ++i) stage->push_back(Bottleneck(inplanes, planes, 1));
  return stage;
}

void ModifiedResNetImpl::initialize_like_reference() {
  torch::NoGradGuard no_grad;
  const double std = std::pow(static_cast<double>(attnpool->c_proj->weight.size(1)), -0.5);
  for (auto* linear : {&attnpool->q_proj, &attnpool->k_proj, &attnpool->v_proj, &attnpool->c_proj}) (*linear)->weight.normal_(0.0, std);
  // Zero-initialised last BatchNorm of each block: every residual branch starts as the identity.
  for (auto& stage : stages) {
    for (const auto& block : stage->children()) block->as<BottleneckImpl>()->bn3->weight.zero_();
  }
}

std::vector<torch::nn::BatchNorm2d> ModifiedResNetImpl::batch_norms() {
  std::vector<torch::nn::BatchNorm2d> out;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(module)) out.emplace_back(bn);
  }
  return out;
}

at::Tensor ModifiedResNetImpl::forward(const at::Tensor& images) {
  at::Tensor x = conv_bn_relu(conv1, bn1, images, paths_);
  x = conv_bn_relu(conv2, bn2, x, paths_);
  x = conv_bn_relu(conv3, bn3, x, paths_);
  x = avg_pool(x, 2, paths_);
  const bool checkpoint = checkpointing();
  for (auto& stage : stages) {
    if (checkpoint) {
      auto* s = stage.get();
      x = checkpointed([s](const std::vector<at::Tensor>& in) { return std::vector<at::Tensor>{s->forward(in[0])}; }, {x}, *s)[0];
    } else {
      x = stage->forward(x);
    }
  }
  return attnpool(x);
}

}  // namespace clip::model
