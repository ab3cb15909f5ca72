// openai/CLIP's `CLIP` module: an image tower (ViT or ModifiedResNet), the causal text transformer,
// the projections and the learned temperature. Weights are always held in fp32; lower precision
// comes from autocast (model/precision.h), never from converting the weights.
#pragma once
#include <torch/nn.h>

#include "model/config.h"
#include "model/layers.h"
#include "model/modified_resnet.h"
#include "model/vision_transformer.h"

namespace clip::model {

struct Logits {
  at::Tensor per_image;  // [N_images, N_texts]
  at::Tensor per_text;   // its transpose
};

/** uint8 RGB pixels [n, R, R, 3] (the centre crops) → float32 [n, 3, R, R] normalised with the
 * model's image mean and std (OpenAI's unless its configuration says otherwise). */
at::Tensor normalize_pixels(const at::Tensor& pixels, const ClipConfig& config);

class ClipImpl : public torch::nn::Module {
 public:
  /** A model with the reference's random initialisation (seed it with torch::manual_seed first). */
  explicit ClipImpl(const ClipConfig& config);

  at::Tensor encode_image(const at::Tensor& images);
  at::Tensor encode_text(const at::Tensor& tokens);
  /** Logits from already-encoded features (normalised here). */
  Logits logits(const at::Tensor& image_features, const at::Tensor& text_features);
  Logits forward(const at::Tensor& images, const at::Tensor& tokens);

  const ClipConfig& config() const { return config_; }
  /** Shape/dtype checks; token ids are range-checked only on host tensors (on a GPU an
   * out-of-range id is a device-side assert), so call these before moving inputs to a device. */
  void check_images(const at::Tensor& images) const;
  void check_tokens(const at::Tensor& tokens) const;
  /**
   * Host token rows cut after the batch's last end-of-text position, rounded up to a multiple of 8
   * (so that batches of similar prompts share one shape, and one CUDA graph). The text tower is causal
   * and pooled at that position, so nothing after it reaches its output or a gradient: the same
   * features, for a fraction of the work when prompts are short ("a photo of a cat" is 7 of 77).
   * Device tensors are returned as they are (their positions would need a synchronisation).
   */
  at::Tensor trim_tokens(const at::Tensor& tokens) const;
  /** The length trim_tokens() cuts to. */
  int64_t text_length(const at::Tensor& tokens) const;
  /** The image tower's BatchNorm layers (empty for ViTs). */
  std::vector<torch::nn::BatchNorm2d> batch_norms();

  /**
   * Keep the ResNet's convolution weights and activations in channels-last (NHWC) layout, which
   * cuDNN's tensor-core convolutions prefer. A no-op for ViTs, whose only convolution is the patch
   * embedding. Weights keep their values and their reference names; files are written contiguous.
   */
  void set_channels_last(bool on);
  bool channels_last() const { return channels_last_; }

  at::Tensor positional_embedding, text_projection, logit_scale;
  VisionTransformer visual_vit{nullptr};
  ModifiedResNet visual_resnet{nullptr};
  Transformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  LayerNormFp32 ln_final{nullptr};

 private:
  ClipConfig config_;
  bool channels_last_ = false;
  bool full_text_context_;  // CLIP_NATIVE_EXPERIMENTS=full-text-context: trim_tokens() leaves tokens whole
};
TORCH_MODULE(Clip);

}  // namespace clip::model
