#include "model/vision_transformer.h"

#include <cmath>

namespace clip::model {

VisionTransformerImpl::VisionTransformerImpl(int64_t resolution, int64_t patch_size, int64_t width, int64_t layers, int64_t heads,
                                             int64_t output_dim) {
  const int64_t grid = resolution / patch_size;
  // Parameters first, then submodules: the reference's state-dict order.
  class_embedding = register_parameter("class_embedding", torch::empty({width}));
  positional_embedding = register_parameter("positional_embedding", torch::empty({grid * grid + 1, width}));
  proj = register_parameter("proj", torch::empty({width, output_dim}));
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, width, patch_size).stride(patch_size).bias(false)));
  ln_pre = register_module("ln_pre", LayerNormFp32(width));
  transformer = register_module("transformer", Transformer(width, layers, heads));
  ln_post = register_module("ln_post", LayerNormFp32(width));
  initialize_like_reference();
}

void VisionTransformerImpl::initialize_like_reference() {
  torch::NoGradGuard no_grad;
  const double scale = std::pow(static_cast<double>(class_embedding.size(0)), -0.5);
  class_embedding.normal_(0.0, scale);
  positional_embedding.normal_(0.0, scale);
  proj.normal_(0.0, scale);
  transformer->initialize_like_reference();
}

at::Tensor VisionTransformerImpl::forward(const at::Tensor& images) {
  at::Tensor x = conv1(images);                                   // [N, W, g, g]
  x = x.flatten(2).transpose(1, 2);                               // [N, g², W]
  at::Tensor cls = class_embedding.to(x.scalar_type()).expand({x.size(0), 1, x.size(2)});
  x = at::cat({cls, x}, 1) + positional_embedding.to(x.scalar_type());
  x = transformer(ln_pre(x), /*causal=*/false);
  x = ln_post(x.select(1, 0));
  return at::matmul(x, proj);
}

}  // namespace clip::model
