// A CLIP architecture, in the reference's own terms (openai/CLIP `CLIP.__init__` arguments).
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clip::model {

/** The transformer MLPs' activation: OpenAI's QuickGELU, or exact erf GELU (nn.GELU(), open_clip's default). */
enum class Activation { kQuickGelu, kGelu };

/** The pixel statistics OpenAI's models were trained with (openai/CLIP `_transform`). */
constexpr std::array<double, 3> kOpenAIImageMean{0.48145466, 0.4578275, 0.40821073};
constexpr std::array<double, 3> kOpenAIImageStd{0.26862954, 0.26130258, 0.27577711};

struct ClipConfig {
  int64_t embed_dim = 0;
  int64_t image_resolution = 0;
  std::vector<int64_t> vision_layers;  // one entry: ViT depth; four entries: ResNet stage depths
  int64_t vision_width = 0;
  int64_t vision_patch_size = 0;  // ViT only (0 for ResNets)
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t transformer_width = 0;
  int64_t transformer_heads = 0;
  int64_t transformer_layers = 0;

  // Other families (open_clip, Hugging Face); the defaults are OpenAI's.
  Activation activation = Activation::kQuickGelu;
  int64_t vision_head_count = 0;      // 0: the reference's rule (vision_heads())
  int64_t vision_mlp_width = 0;       // ViT only; 0: 4 × vision_width
  int64_t transformer_mlp_width = 0;  // 0: 4 × transformer_width
  // How images were prepared for the model. Only recorded here (preprocessing is TypeScript's), but
  // uint8 batches are normalised on the model's device with these.
  std::array<double, 3> image_mean = kOpenAIImageMean;
  std::array<double, 3> image_std = kOpenAIImageStd;
  std::string image_resize_mode = "shortest";  // open_clip's: shortest | longest | squash

  bool is_resnet() const { return vision_layers.size() == 4; }
  /** The reference's rule: ViT heads = width / 64; ResNet attention-pool heads = width * 32 / 64. */
  int64_t reference_vision_heads() const { return is_resnet() ? vision_width * 32 / 64 : vision_width / 64; }
  int64_t vision_heads() const { return vision_head_count > 0 ? vision_head_count : reference_vision_heads(); }
  int64_t vision_mlp() const { return vision_mlp_width > 0 ? vision_mlp_width : 4 * vision_width; }
  int64_t transformer_mlp() const { return transformer_mlp_width > 0 ? transformer_mlp_width : 4 * transformer_width; }

  /** Throws std::invalid_argument naming the first field that cannot build a model. */
  void validate() const;
};

const char* activation_name(Activation activation);

/**
 * The configuration implied by a state dict's names and shapes, as the reference's `build_model`
 * infers it, plus the MLP widths. Like the reference, text heads are taken as width / 64 and the
 * activation as QuickGELU, which shapes cannot tell: callers must prefer a configuration stated by
 * the file or beside it.
 */
ClipConfig infer_config(const std::map<std::string, at::Tensor>& state);

}  // namespace clip::model
