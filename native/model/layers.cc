#include "model/layers.h"

#include <ATen/autocast_mode.h>

#include <cmath>
#include <tuple>

#include "common/experiments.h"
#include "model/activation_checkpoint.h"
#include "model/compute_weights.h"
#include "model/layer_norm_kernel.h"
#include "model/own_linear_backward.h"

namespace clip::model {

LayerNormFp32Impl::LayerNormFp32Impl(int64_t width)
    : width_(width), kernel_(!experiment_enabled("aten-layernorm")) {
  weight = register_parameter("weight", torch::ones({width}));
  bias = register_parameter("bias", torch::zeros({width}));
}

at::Tensor LayerNormFp32Impl::forward(const at::Tensor& x, bool into_product) {
  const auto dtype = x.scalar_type();
  if (kernel_) {
    // The reference's numbers (fp32 arithmetic, the output rounded to the input's type) from one
    // kernel each way that reads and writes the activation in its own type, instead of casts to fp32
    // and back around ATen's fp32 LayerNorm, forward and backward (the measurement: docs/performance.md,
    // bench/results/levers.md round five). Where the kernels
    // do not take x (the CPU, a build without nvcc), ATen's LayerNorm below.
    if (auto y = layer_norm_by_kernel(x, weight, bias, 1e-5, output_type(x, into_product))) return *std::move(y);
  }
  return at::layer_norm(x.to(at::kFloat), {width_}, weight, bias, 1e-5).to(dtype);
}

at::ScalarType LayerNormFp32Impl::output_type(const at::Tensor& x, bool into_product) const {
  // An fp32 input headed for a product under autocast (the text tower's) is written in autocast's
  // type straight away: the same rounding the product's cast would do, without that cast or its
  // backward.
  const at::DeviceType device = x.device().type();
  const bool cast_ahead = into_product && x.scalar_type() == at::kFloat && at::autocast::is_autocast_enabled(device);
  return cast_ahead ? at::autocast::get_autocast_dtype(device) : x.scalar_type();
}

std::pair<at::Tensor, at::Tensor> LayerNormFp32Impl::add_forward(const at::Tensor& x, const at::Tensor& r) {
  if (kernel_) {
    // The sum is written by the LayerNorm's first pass, which reads x and r instead of the sum; its
    // backward adds the stream's gradient to the LayerNorm's and writes both addends' gradients (the
    // branch's in its own type) in the same pass.
    if (auto joined = add_layer_norm_by_kernel(x, r, weight, bias, 1e-5, output_type(x, /*into_product=*/true))) return *std::move(joined);
  }
  at::Tensor s = x + r;
  return {s, forward(s, /*into_product=*/true)};
}

at::Tensor quick_gelu(const at::Tensor& x) { return x * at::sigmoid(1.702 * x); }

namespace {

// x Wᵀ + b with the weight and bias read through compute_weight(): at::linear, or the same forward
// with the own backward (native/model/own_linear_backward.h; CUDA's default, measured in
// docs/performance.md and bench/results/levers.md round five).
at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool own_backward) {
  const at::Tensor w = compute_weight(weight), b = bias.defined() ? compute_weight(bias) : at::Tensor();
  return own_backward ? linear_with_own_backward(x, w, b) : at::linear(x, w, b);
}

at::Tensor project(const torch::nn::Linear& m, const at::Tensor& x, bool own_backward) { return project(x, m->weight, m->bias, own_backward); }

}  // namespace

SelfAttentionImpl::SelfAttentionImpl(int64_t width, int64_t heads)
    : heads_(heads), own_backward_("own-linear-backward", "autograd-linear") {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
  // nn.MultiheadAttention._reset_parameters: xavier-uniform packed weights, zero biases.
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(in_proj_weight);
  torch::nn::init::zeros_(out_proj->bias);
}

at::Tensor SelfAttentionImpl::forward(const at::Tensor& x, bool causal) {
  const int64_t n = x.size(0), l = x.size(1), d = x.size(2);
  const bool own_backward = own_backward_.taken(x.is_cuda());
  // [N, L, 3D] → q, k, v as [N, H, L, D/H] views. unbind, not qkv[0..2]: the backward of three
  // selects is three zero-filled [N, L, 3D] tensors, three copies and two sums per layer; unbind's is
  // one stack, which writes the packed gradient in the linear's layout.
  const std::vector<at::Tensor> qkv = project(x, in_proj_weight, in_proj_bias, own_backward).view({n, l, 3, heads_, d / heads_}).unbind(2);
  at::Tensor out = at::scaled_dot_product_attention(qkv[0].transpose(1, 2), qkv[1].transpose(1, 2), qkv[2].transpose(1, 2), /*attn_mask=*/{},
                                                    /*dropout_p=*/0.0, /*is_causal=*/causal);
  return project(out_proj, out.transpose(1, 2).reshape({n, l, d}), own_backward);
}

MlpImpl::MlpImpl(const BlockShape& shape)
    : activation_(shape.activation),
      fused_("fused-mlp", "reference-mlp"),
      own_backward_("own-linear-backward", "autograd-linear") {
  c_fc = register_module("c_fc", torch::nn::Linear(shape.width, shape.mlp_width));
  c_proj = register_module("c_proj", torch::nn::Linear(shape.mlp_width, shape.width));
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  const bool own_backward = own_backward_.taken(x.is_cuda());
  // Exact erf GELU, as nn.GELU(): none of QuickGELU's own forms applies to it.
  if (activation_ == Activation::kGelu) return project(c_proj, at::gelu(project(c_fc, x, own_backward)), own_backward);
  return forward_quick_gelu(x, own_backward);
}

at::Tensor MlpImpl::forward_quick_gelu(const at::Tensor& x, bool own_backward) {
  // On CUDA: QuickGELU(h) = silu(1.702 h) / 1.702, the two scalings applied by the matrix products
  // (alpha, on cuBLAS's fp32 accumulator). The block's widest activation ([n, l, 4 d]) then sees one
  // fused silu kernel forward and one backward instead of three and about five passes (the
  // measurement: docs/performance.md, bench/results/gpu-h200.md). Equal to
  // the reference up to rounding in fp32. On the CPU the reference's form stays: there its bf16 drift
  // from fp32 grew (mean 2.65 % vs 2.42 % of the largest logit over 21 batches of tiny_vit), and speed
  // is not the CPU's job. Experiments fused-mlp / reference-mlp force one form on any device.
  if (!fused_.taken(x.is_cuda())) return project(c_proj, quick_gelu(project(c_fc, x, own_backward)), own_backward);
  constexpr double kScale = 1.702;
  const at::Tensor rows = x.reshape({-1, x.size(-1)});
  // The bias is scaled in fp32 from the parameter itself, as autocast would cast the product.
  at::Tensor h, out;
  if (own_backward) {
    // The same products; their backward applies alpha inside the products instead of a pass each.
    h = linear_with_own_backward(rows, compute_weight(c_fc->weight), c_fc->bias * kScale, kScale);
    out = linear_with_own_backward(at::silu(h), compute_weight(c_proj->weight), compute_weight(c_proj->bias), 1.0 / kScale);
  } else {
    h = at::addmm(c_fc->bias * kScale, rows, compute_weight(c_fc->weight).t(), /*beta=*/1.0, /*alpha=*/kScale);
    out = at::addmm(compute_weight(c_proj->bias), at::silu(h), compute_weight(c_proj->weight).t(), /*beta=*/1.0, /*alpha=*/1.0 / kScale);
  }
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out.size(-1);
  return out.view(shape);
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(const BlockShape& shape) {
  // Registration order = state-dict order of the reference: attn, ln_1, mlp, ln_2.
  attn = register_module("attn", SelfAttention(shape.width, shape.heads));
  ln_1 = register_module("ln_1", LayerNormFp32(shape.width));
  mlp = register_module("mlp", Mlp(shape));
  ln_2 = register_module("ln_2", LayerNormFp32(shape.width));
}

at::Tensor ResidualAttentionBlockImpl::forward(const at::Tensor& x, bool causal) {
  at::Tensor h = x + attn(ln_1(x, /*into_product=*/true), causal);
  return h + mlp(ln_2(h, /*into_product=*/true));
}

void ResidualAttentionBlockImpl::forward_joined(at::Tensor& stream, at::Tensor& branch, bool causal) {
  at::Tensor normed;
  if (branch.defined()) {
    std::tie(stream, normed) = ln_1->add_forward(stream, branch);
  } else {
    normed = ln_1(stream, /*into_product=*/true);
  }
  std::tie(stream, normed) = ln_2->add_forward(stream, attn(normed, causal));
  branch = mlp(normed);
}

namespace {

/** block.forward_joined(stream, branch) as one checkpointed segment (the first block has no branch yet). */
void forward_joined_checkpointed(ResidualAttentionBlockImpl& block, at::Tensor& stream, at::Tensor& branch, bool causal) {
  const bool first = !branch.defined();
  auto segment = [&block, causal, first](const std::vector<at::Tensor>& in) {
    at::Tensor s = in[0], b = first ? at::Tensor() : in[1];
    block.forward_joined(s, b, causal);
    return std::vector<at::Tensor>{s, b};
  };
  const auto out = checkpointed(segment, first ? std::vector<at::Tensor>{stream} : std::vector<at::Tensor>{stream, branch}, block);
  stream = out[0];
  branch = out[1];
}

}  // namespace

TransformerImpl::TransformerImpl(const BlockShape& shape, int64_t layers)
    : width_(shape.width), layers_(layers), joined_adds_(!experiment_enabled("aten-layernorm")) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) resblocks->push_back(ResidualAttentionBlock(shape));
}

at::Tensor TransformerImpl::forward(at::Tensor x, bool causal) {
  const bool checkpoint = checkpointing();
  if (joined_adds_) {
    at::Tensor branch;
    for (const auto& block : *resblocks) {
      auto* b = block->as<ResidualAttentionBlockImpl>();
      if (checkpoint) {
        forward_joined_checkpointed(*b, x, branch, causal);
      } else {
        b->forward_joined(x, branch, causal);
      }
    }
    return branch.defined() ? x + branch : x;
  }
  for (const auto& block : *resblocks) {
    auto* b = block->as<ResidualAttentionBlockImpl>();
    if (checkpoint) {
      x = checkpointed([b, causal](const std::vector<at::Tensor>& in) { return std::vector<at::Tensor>{b->forward(in[0], causal)}; }, {x}, *b)[0];
    } else {
      x = b->forward(x, causal);
    }
  }
  return x;
}

void TransformerImpl::initialize_like_reference() {
  torch::NoGradGuard no_grad;
  const double proj_std = std::pow(static_cast<double>(width_), -0.5) * std::pow(2.0 * static_cast<double>(layers_), -0.5);
  const double attn_std = std::pow(static_cast<double>(width_), -0.5);
  const double fc_std = std::pow(2.0 * static_cast<double>(width_), -0.5);
  for (const auto& module : *resblocks) {
    auto* block = module->as<ResidualAttentionBlockImpl>();
    torch::nn::init::normal_(block->attn->in_proj_weight, 0.0, attn_std);
    torch::nn::init::normal_(block->attn->out_proj->weight, 0.0, proj_std);
    torch::nn::init::normal_(block->mlp->c_fc->weight, 0.0, fc_std);
    torch::nn::init::normal_(block->mlp->c_proj->weight, 0.0, proj_std);
  }
}

}  // namespace clip::model
