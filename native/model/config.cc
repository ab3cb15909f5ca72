#include "model/config.h"
#include "model/config_size.h"

#include <cmath>
#include <set>
#include <sstream>
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

double minimum_parameters(const ClipConfig& c) {
  const auto d = [](int64_t v) { return static_cast<double>(v); };
  // A transformer block's four attention matrices and two MLP matrices.
  const auto blocks = [&](int64_t layers, int64_t width, int64_t mlp) { return d(layers) * (4 * d(width) * d(width) + 2 * d(width) * d(mlp)); };
  double text = d(c.vocab_size) * d(c.transformer_width) + d(c.context_length) * d(c.transformer_width) +
                blocks(c.transformer_layers, c.transformer_width, c.transformer_mlp()) + d(c.transformer_width) * d(c.embed_dim);
  double vision = 0;
  if (c.is_resnet()) {
    // Each bottleneck holds at least its 1×1, 3×3 and 1×1 convolutions: (1 + 9 + 4) planes²; the
    // attention pool its q, k and v projections of the last stage's width and c_proj to embed_dim.
    for (size_t i = 0; i < c.vision_layers.size(); ++i) {
      const double planes = d(c.vision_width) * static_cast<double>(int64_t{1} << i);
      vision += d(c.vision_layers[i]) * 14 * planes * planes;
    }
    const double pool = 32 * d(c.vision_width);
    vision += 3 * pool * pool + pool * d(c.embed_dim);
  } else if (!c.vision_layers.empty() && c.vision_patch_size > 0) {
    const double grid = d(c.image_resolution / c.vision_patch_size);
    vision = 3 * d(c.vision_patch_size) * d(c.vision_patch_size) * d(c.vision_width) + (grid * grid + 1) * d(c.vision_width) +
             blocks(c.vision_layers[0], c.vision_width, c.vision_mlp()) + d(c.vision_width) * d(c.embed_dim);
  }
  return text + vision;
}

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
  // Far past any CLIP (ViT-bigG/14 has 2.5 billion): a size read from a stranger's file must not
  // decide how much memory the model takes.
  constexpr double kMaxParameters = 1e11;
  if (const double n = minimum_parameters(*this); n > kMaxParameters) {
    std::ostringstream text;
    text.precision(3);
    text << "model config: these sizes make a model of at least " << n << " parameters, more than the " << kMaxParameters
         << " clip-native builds (the largest CLIP has 2.5e9); a size is wrong";
    throw std::invalid_argument(text.str());
  }
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
