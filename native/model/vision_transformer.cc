#include "model/vision_transformer.h"

#include <ATen/autocast_mode.h>

#include <cmath>

#include "model/compute_weights.h"

namespace clip::model {

VisionTransformerImpl::VisionTransformerImpl(int64_t resolution, int64_t patch_size, const BlockShape& shape, int64_t layers, int64_t output_dim) {
  const int64_t grid = resolution / patch_size, width = shape.width;
  // Parameters first, then submodules: the reference's state-dict order.
  class_embedding = register_parameter("class_embedding", torch::empty({width}));
  positional_embedding = register_parameter("positional_embedding", torch::empty({grid * grid + 1, width}));
  proj = register_parameter("proj", torch::empty({width, output_dim}));
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, width, patch_size).stride(patch_size).bias(false)));
  ln_pre = register_module("ln_pre", LayerNormFp32(width));
  transformer = register_module("transformer", Transformer(shape, layers));
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
  at::Tensor x = embed_patches(images);                           // [N, g², W]
  at::Tensor cls = class_embedding.to(x.scalar_type()).expand({x.size(0), 1, x.size(2)});
  x = at::cat({cls, x}, 1) + positional_embedding.to(x.scalar_type());
  x = transformer(ln_pre(x), /*causal=*/false);
  x = ln_post(x.select(1, 0), /*into_product=*/true);
  return at::matmul(x, compute_weight(proj));
}

// conv1 (kernel = stride = patch, no padding) sees each patch once, so it is one matrix product:
// patches as rows [N·g², 3·p·p] times the kernel as [W, 3·p·p]ᵀ. cuDNN ran this stride-p convolution
// at a fraction of the GEMM's speed (docs/performance.md). The images are cast to autocast's type first, so the copy that gathers the patches moves
// half the bytes.
at::Tensor VisionTransformerImpl::embed_patches(const at::Tensor& images) const {
  const at::Tensor kernel = compute_weight(conv1->weight);  // [W, 3, p, p]
  const int64_t n = images.size(0), channels = images.size(1), p = kernel.size(2);
  const int64_t rows = images.size(2) / p, cols = images.size(3) / p;
  at::Tensor pixels = images;
  const at::DeviceType device = images.device().type();
  if (at::autocast::is_autocast_enabled(device)) pixels = pixels.to(at::autocast::get_autocast_dtype(device));
  // A convolution ignores a remainder narrower than a patch; so does this.
  pixels = pixels.narrow(2, 0, rows * p).narrow(3, 0, cols * p);
  const at::Tensor patches =
      pixels.reshape({n, channels, rows, p, cols, p}).permute({0, 2, 4, 1, 3, 5}).reshape({n * rows * cols, channels * p * p});
  return at::matmul(patches, kernel.reshape({kernel.size(0), -1}).t()).view({n, rows * cols, kernel.size(0)});
}

}  // namespace clip::model
