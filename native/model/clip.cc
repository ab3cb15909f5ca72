#include "model/clip.h"

#include <cmath>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "common/experiments.h"
#include "model/compute_weights.h"

namespace clip::model {

ClipImpl::ClipImpl(const ClipConfig& config) : config_(config), full_text_context_(experiment_enabled("full-text-context")) {
  config.validate();
  const int64_t width = config.transformer_width;
  // Own parameters first, then submodules in the reference's order: its state-dict order.
  positional_embedding = register_parameter("positional_embedding", torch::empty({config.context_length, width}));
  text_projection = register_parameter("text_projection", torch::empty({width, config.embed_dim}));
  logit_scale = register_parameter("logit_scale", torch::full({}, std::log(1.0 / 0.07)));
  if (config.is_resnet()) {
    visual_resnet = register_module(
        "visual", ModifiedResNet(config.vision_layers, config.embed_dim, config.vision_heads(), config.image_resolution, config.vision_width));
  } else {
    const BlockShape shape{config.vision_width, config.vision_heads(), config.vision_mlp(), config.activation};
    visual_vit = register_module("visual", VisionTransformer(config.image_resolution, config.vision_patch_size, shape, config.vision_layers[0], config.embed_dim));
  }
  const BlockShape text{width, config.transformer_heads, config.transformer_mlp(), config.activation};
  transformer = register_module("transformer", Transformer(text, config.transformer_layers));
  token_embedding = register_module("token_embedding", torch::nn::Embedding(config.vocab_size, width));
  ln_final = register_module("ln_final", LayerNormFp32(width));

  torch::NoGradGuard no_grad;
  token_embedding->weight.normal_(0.0, 0.02);
  positional_embedding.normal_(0.0, 0.01);
  text_projection.normal_(0.0, std::pow(static_cast<double>(width), -0.5));
  transformer->initialize_like_reference();
}

void ClipImpl::check_images(const at::Tensor& images) const {
  const int64_t r = config_.image_resolution;
  const std::string size = std::to_string(r);
  if (images.scalar_type() == at::kByte) {
    if (images.dim() != 4 || images.size(1) != r || images.size(2) != r || images.size(3) != 3)
      throw std::invalid_argument("uint8 images must be RGB pixels of shape [n, " + size + ", " + size + ", 3] for this model, got " +
                                  c10::str(images.sizes()));
    return;
  }
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != r || images.size(3) != r)
    throw std::invalid_argument("images must have shape [n, 3, " + size + ", " + size + "] for this model (or uint8 [n, " + size + ", " + size +
                                ", 3] pixels), got " + c10::str(images.sizes()));
  if (!at::isFloatingType(images.scalar_type())) throw std::invalid_argument("images must be floating point (normalised pixels) or uint8 pixels");
}

namespace {

struct PixelConstants {
  at::Tensor scale, mean, std;  // [1], [1,3,1,1], [1,3,1,1] on one device
};

at::Tensor channel_constants(const std::array<double, 3>& v, const at::Device& device) {
  const float f[3] = {static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2])};
  return at::tensor(at::ArrayRef<float>(f, 3), at::TensorOptions().dtype(at::kFloat)).view({1, 3, 1, 1}).to(device);
}

/** Made once per device and statistics: copying them from the host every step would wait for the GPU's queue. */
const PixelConstants& pixel_constants(const at::Device& device, const ClipConfig& config) {
  static std::mutex mutex;
  static std::map<std::string, PixelConstants> cache;
  std::ostringstream key;
  key.precision(17);
  key << device.str();
  for (int i = 0; i < 3; ++i) key << ' ' << config.image_mean[i] << ' ' << config.image_std[i];
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, inserted] = cache.try_emplace(key.str());
  if (inserted) {
    // Tensors, not scalars: dividing by a scalar may multiply by its reciprocal, which is not x / 255.
    it->second.scale = at::full({1}, 255.0f, at::TensorOptions().dtype(at::kFloat)).to(device);
    it->second.mean = channel_constants(config.image_mean, device);
    it->second.std = channel_constants(config.image_std, device);
  }
  return it->second;
}

}  // namespace

at::Tensor normalize_pixels(const at::Tensor& pixels, const ClipConfig& config) {
  // ToTensor + Normalize of openai/CLIP's _transform in the same float32 steps (x / 255 - mean) / std
  // as the JS loader's tables, so a batch can travel as bytes and be normalised on the model's device.
  const PixelConstants& c = pixel_constants(pixels.device(), config);
  return pixels.permute({0, 3, 1, 2}).to(at::kFloat).div(c.scale).sub(c.mean).div(c.std);
}

void ClipImpl::check_tokens(const at::Tensor& tokens) const {
  if (tokens.dim() != 2 || tokens.size(1) > config_.context_length || tokens.size(1) < 1)
    throw std::invalid_argument("tokens must have shape [n, " + std::to_string(config_.context_length) + "], got " + c10::str(tokens.sizes()));
  if (at::isFloatingType(tokens.scalar_type())) throw std::invalid_argument("tokens must be integers (Int32Array or BigInt64Array)");
  // Range check on host data only: on a GPU it would cost a synchronisation every step.
  if (tokens.numel() > 0 && tokens.device().is_cpu()) {
    const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
    if (lo < 0 || hi >= config_.vocab_size)
      throw std::invalid_argument("token ids must lie in [0, " + std::to_string(config_.vocab_size) + "), got a " +
                                  std::to_string(lo < 0 ? lo : hi));
  }
}

int64_t ClipImpl::text_length(const at::Tensor& tokens) const {
  // Callers have passed check_tokens(): [n, L] integers.
  if (full_text_context_ || !tokens.device().is_cpu() || tokens.numel() == 0) return tokens.size(1);
  // The pooled position of each row is its argmax (the end-of-text token has the highest id).
  const int64_t last = tokens.argmax(1).max().item<int64_t>();
  return std::min<int64_t>(tokens.size(1), (last + 1 + 7) / 8 * 8);
}

at::Tensor ClipImpl::trim_tokens(const at::Tensor& tokens) const {
  const int64_t length = text_length(tokens);
  return length < tokens.size(1) ? tokens.narrow(1, 0, length).contiguous() : tokens;
}

at::Tensor ClipImpl::encode_image(const at::Tensor& input) {
  check_images(input);
  // As the reference's `image.type(self.dtype)`: fp64 input is brought to the weights' fp32.
  at::Tensor images = input.scalar_type() == at::kByte ? normalize_pixels(input, config_) : input.scalar_type() == at::kDouble ? input.to(at::kFloat) : input;
  if (!config_.is_resnet()) return visual_vit(images);
  if (channels_last_) images = images.contiguous(at::MemoryFormat::ChannelsLast);
  return visual_resnet(images);
}

at::Tensor ClipImpl::encode_text(const at::Tensor& input_tokens) {
  check_tokens(input_tokens);
  const at::Tensor tokens = input_tokens.to(at::kLong);
  const int64_t length = tokens.size(1);
  at::Tensor x = token_embedding(tokens) + positional_embedding.narrow(0, 0, length);
  x = transformer(x, /*causal=*/true);
  // The end-of-text token has the highest id; argmax takes its first occurrence, as the reference.
  // gather rather than x[arange, eot]: the same values, and a backward (scatter-add) that never
  // synchronises with the host, which a CUDA graph of the train step needs.
  const at::Tensor eot = tokens.argmax(-1).view({-1, 1, 1}).expand({-1, 1, x.size(-1)});
  x = x.gather(1, eot).squeeze(1);
  // LayerNorm acts per token, so normalising only the gathered tokens gives the reference's values.
  return at::matmul(ln_final(x, /*into_product=*/true), compute_weight(text_projection));
}

Logits ClipImpl::logits(const at::Tensor& image_features, const at::Tensor& text_features) {
  at::Tensor image = image_features / image_features.norm(2, -1, true);
  at::Tensor text = text_features / text_features.norm(2, -1, true);
  at::Tensor per_image = logit_scale.exp() * at::matmul(image, text.t());
  return {per_image, per_image.t()};
}

Logits ClipImpl::forward(const at::Tensor& images, const at::Tensor& tokens) {
  return logits(encode_image(images), encode_text(tokens));
}

void ClipImpl::set_channels_last(bool on) {
  if (!config_.is_resnet()) return;
  torch::NoGradGuard no_grad;
  const auto format = on ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  for (auto& p : visual_resnet->parameters()) {
    // Re-striding in place keeps the Parameter objects (and any optimizer state keyed on them).
    if (p.dim() == 4) p.set_data(p.data().contiguous(format));
  }
  channels_last_ = on;
}

std::vector<torch::nn::BatchNorm2d> ClipImpl::batch_norms() {
  return config_.is_resnet() ? visual_resnet->batch_norms() : std::vector<torch::nn::BatchNorm2d>{};
}

}  // namespace clip::model
