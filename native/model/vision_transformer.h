// The ViT image tower of openai/CLIP (`VisionTransformer`), parameter for parameter.
#pragma once
#include <torch/nn.h>

#include "model/layers.h"

namespace clip::model {

class VisionTransformerImpl : public torch::nn::Module {
 public:
  VisionTransformerImpl(int64_t resolution, int64_t patch_size, const BlockShape& shape, int64_t layers, int64_t output_dim);
  at::Tensor forward(const at::Tensor& images);
  void initialize_like_reference();

  at::Tensor class_embedding, positional_embedding, proj;
  torch::nn::Conv2d conv1{nullptr};
  LayerNormFp32 ln_pre{nullptr};
  Transformer transformer{nullptr};
  LayerNormFp32 ln_post{nullptr};

 private:
  at::Tensor embed_patches(const at::Tensor& images) const;
};
TORCH_MODULE(VisionTransformer);

}  // namespace clip::model
