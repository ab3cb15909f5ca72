// The transformer pieces shared by the text tower and the vision transformer, with the reference's
// parameter names (`attn.in_proj_weight`, `mlp.c_fc`, `ln_1`, …) so state dicts map one to one.
// Activations are batch-first [N, L, D]; the reference's [L, N, D] layout is only a permutation.
#pragma once
#include <torch/nn.h>

#include "common/experiments.h"
#include "model/config.h"

namespace clip::model {

/** What differs between the towers' (and the families') transformer blocks. */
struct BlockShape {
  int64_t width = 0;
  int64_t heads = 0;
  int64_t mlp_width = 0;
  Activation activation = Activation::kQuickGelu;
};

/** LayerNorm computed in fp32 whatever the input dtype, as the reference does for fp16/bf16. */
class LayerNormFp32Impl : public torch::nn::Module {
 public:
  explicit LayerNormFp32Impl(int64_t width);
  /**
   * The output in x's type, as the reference's. `into_product`: the caller only feeds it to matrix
   * products, which autocast casts to its type anyway, so a path that can may write it in that type.
   */
  at::Tensor forward(const at::Tensor& x, bool into_product = false);
  /**
   * {s, forward(s, into_product = true)} for s = x + r: the residual add before this LayerNorm, joined
   * to it in one kernel each way where the kernels allow (CUDA; not under experiment aten-layernorm).
   */
  std::pair<at::Tensor, at::Tensor> add_forward(const at::Tensor& x, const at::Tensor& r);
  at::Tensor weight, bias;

 private:
  /** The output's type: x's, or autocast's for an fp32 x headed for a product (see forward). */
  at::ScalarType output_type(const at::Tensor& x, bool into_product) const;
  int64_t width_;
  bool kernel_;  // the own kernels where they take the input: not under experiment aten-layernorm
};
TORCH_MODULE(LayerNormFp32);

/** x · sigmoid(1.702 x), the activation CLIP was trained with. */
at::Tensor quick_gelu(const at::Tensor& x);

/** nn.MultiheadAttention's parameters (packed q/k/v), computed with scaled_dot_product_attention. */
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t width, int64_t heads);
  at::Tensor forward(const at::Tensor& x, bool causal);
  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t heads_;
  CudaDefault own_backward_;  // native/model/own_linear_backward.h: own-linear-backward / autograd-linear
};
TORCH_MODULE(SelfAttention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const BlockShape& shape);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};

 private:
  /** QuickGELU's forms: the reference's, or silu with its scalings in the products. */
  at::Tensor forward_quick_gelu(const at::Tensor& x, bool own_backward);
  Activation activation_;
  CudaDefault fused_;         // QuickGELU by silu, its scalings in the products: fused-mlp / reference-mlp
  CudaDefault own_backward_;  // native/model/own_linear_backward.h: own-linear-backward / autograd-linear
};
TORCH_MODULE(Mlp);

class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  explicit ResidualAttentionBlockImpl(const BlockShape& shape);
  at::Tensor forward(const at::Tensor& x, bool causal);
  /**
   * The same block with its residual adds left to the LayerNorms after them (LayerNormFp32::
   * add_forward): `stream` is the residual stream before `branch` (the previous block's MLP output,
   * undefined for the first block) is added; both are updated for the next block, whose input is
   * stream + branch.
   */
  void forward_joined(at::Tensor& stream, at::Tensor& branch, bool causal);
  SelfAttention attn{nullptr};
  LayerNormFp32 ln_1{nullptr};
  Mlp mlp{nullptr};
  LayerNormFp32 ln_2{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(const BlockShape& shape, int64_t layers);
  at::Tensor forward(at::Tensor x, bool causal);
  /** The reference's initialisation of attention and MLP weights (CLIP.initialize_parameters). */
  void initialize_like_reference();
  torch::nn::ModuleList resblocks{nullptr};

 private:
  int64_t width_, layers_;
  bool joined_adds_;  // each residual add joined to the LayerNorm after it: not under experiment aten-layernorm
};
TORCH_MODULE(Transformer);

}  // namespace clip::model
