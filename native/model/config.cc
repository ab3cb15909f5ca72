#include "model/config.h"

#include <cmath>
#include <set>
#include <stdexcept>

namespace clip::model {
namespace {

void require_positive(int64_t value, const char* name) {
  if (value <= 0) throw std::invalid_argument(std::string("model config: ") + name + " must be a positive integer, got " + std::to_string(value));
}

const at::Tensor& get(const std::map<std::string, at::Tensor>& state, const std::string& key) {
  auto it = state.find(key);
  if (it == state.end()) throw std::invalid_argument("cannot infer the model configuration: the weights have no '" + key + "'");
  return it->second;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

/** Number of distinct `<prefix><index>.` entries among the keys. */
int64_t count_indexed(const std::map<std::string, at::Tensor>& state, const std::string& prefix) {
  std::set<std::string> indices;
  for (const auto& [key, _] : state) {
    if (!starts_with(key, prefix)) continue;
    indices.insert(key.substr(prefix.size(), key.find('.', prefix.size()) - prefix.size()));
  }
  return static_cast<int64_t>(indices.size());
}

}  // namespace

void ClipConfig::validate() const {
  require_positive(embed_dim, "embed_dim");
  require_positive(image_resolution, "image_resolution");
  require_positive(vision_width, "vision_width");
  require_positive(context_length, "context_length");
  require_positive(vocab_size, "vocab_size");
  require_positive(transformer_width, "transformer_width");
  require_positive(transformer_heads, "transformer_heads");
  require_positive(transformer_layers, "transformer_layers");
  if (vision_layers.size() != 1 && vision_layers.size() != 4)
    throw std::invalid_argument("model config: vision_layers must be an integer (ViT) or a list of 4 integers (ResNet)");
  for (int64_t n : vision_layers) require_positive(n, "vision_layers[*]");
  require_positive(vision_heads(), "vision_heads");
  require_positive(transformer_mlp(), "transformer_mlp_width");
  if (vision_head_count < 0) throw std::invalid_argument("model config: vision_heads must be a positive integer");
  if (vision_mlp_width < 0 || transformer_mlp_width < 0) throw std::invalid_argument("model config: MLP widths must be positive integers");
  for (int i = 0; i < 3; ++i) {
    if (!std::isfinite(image_mean[i]) || !std::isfinite(image_std[i]) || image_std[i] <= 0)
      throw std::invalid_argument("model config: image_mean must be 3 finite numbers and image_std 3 positive ones");
  }
  if (image_resize_mode != "shortest" && image_resize_mode != "longest" && image_resize_mode != "squash")
    throw std::invalid_argument("model config: image_resize_mode must be shortest, longest or squash, got '" + image_resize_mode + "'");
  if (transformer_width % transformer_heads != 0)
    throw std::invalid_argument("model config: transformer_width " + std::to_string(transformer_width) + " is not divisible by transformer_heads " +
                                std::to_string(transformer_heads));
  if (is_resnet()) {
    if (image_resolution % 32 != 0)
      throw std::invalid_argument("model config: a ResNet needs image_resolution divisible by 32, got " + std::to_string(image_resolution));
    if (vision_width % 2 != 0) throw std::invalid_argument("model config: a ResNet needs an even vision_width");
    if (vision_width * 32 % vision_heads() != 0)
      throw std::invalid_argument("model config: the ResNet attention pool's width " + std::to_string(vision_width * 32) +
                                  " is not divisible by vision_heads " + std::to_string(vision_heads()));
  } else {
    require_positive(vision_patch_size, "vision_patch_size");
    if (image_resolution % vision_patch_size != 0)
      throw std::invalid_argument("model config: image_resolution " + std::to_string(image_resolution) + " is not divisible by vision_patch_size " +
                                  std::to_string(vision_patch_size));
    if (vision_heads() < 1) throw std::invalid_argument("model config: a ViT needs vision_width ≥ 64 (heads = width / 64) or vision_heads");
    if (vision_width % vision_heads() != 0)
      throw std::invalid_argument("model config: vision_width " + std::to_string(vision_width) + " is not divisible by vision_heads " +
                                  std::to_string(vision_heads()));
    require_positive(vision_mlp(), "vision_mlp_width");
  }
}

const char* activation_name(Activation activation) { return activation == Activation::kGelu ? "gelu" : "quick_gelu"; }

ClipConfig infer_config(const std::map<std::string, at::Tensor>& state) {
  ClipConfig c;
  if (state.count("visual.proj")) {
    const at::Tensor& conv1 = get(state, "visual.conv1.weight");
    c.vision_width = conv1.size(0);
    int64_t layers = 0;
    for (const auto& [key, _] : state) {
      if (starts_with(key, "visual.") && key.size() > 20 && key.compare(key.size() - 20, 20, ".attn.in_proj_weight") == 0) ++layers;
    }
    c.vision_layers = {layers};
    c.vision_patch_size = conv1.size(-1);
    const int64_t tokens = get(state, "visual.positional_embedding").size(0);
    const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens - 1))));
    c.image_resolution = c.vision_patch_size * grid;
    c.vision_mlp_width = get(state, "visual.transformer.resblocks.0.mlp.c_fc.weight").size(0);
  } else {
    for (int b = 1; b <= 4; ++b) c.vision_layers.push_back(count_indexed(state, "visual.layer" + std::to_string(b) + "."));
    c.vision_width = get(state, "visual.layer1.0.conv1.weight").size(0);
    const int64_t tokens = get(state, "visual.attnpool.positional_embedding").size(0);
    const auto output_width = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens - 1))));
    if (output_width * output_width + 1 != tokens)
      throw std::invalid_argument("cannot infer the model configuration: visual.attnpool.positional_embedding has " + std::to_string(tokens) +
                                  " rows, not a square grid plus one");
    c.image_resolution = output_width * 32;
  }
  c.embed_dim = get(state, "text_projection").size(1);
  c.context_length = get(state, "positional_embedding").size(0);
  c.vocab_size = get(state, "token_embedding.weight").size(0);
  c.transformer_width = get(state, "ln_final.weight").size(0);
  c.transformer_heads = c.transformer_width / 64;
  c.transformer_layers = count_indexed(state, "transformer.resblocks.");
  c.transformer_mlp_width = get(state, "transformer.resblocks.0.mlp.c_fc.weight").size(0);
  c.validate();
  return c;
}

}  // namespace clip::model
