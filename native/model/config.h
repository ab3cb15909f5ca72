// A CLIP architecture, in the reference's own terms (openai/CLIP `CLIP.__init__` arguments).
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clip::model {

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

  bool is_resnet() const { return vision_layers.size() == 4; }
  /** The reference's rule: ViT heads = width / 64; ResNet attention-pool heads = width * 32 / 64. */
  int64_t vision_heads() const { return is_resnet() ? vision_width * 32 / 64 : vision_width / 64; }

  /** Throws std::invalid_argument naming the first field that cannot build a model. */
  void validate() const;
};

/**
 * The configuration implied by a state dict's names and shapes, as the reference's `build_model`
 * infers it. Like the reference, text heads are taken as width / 64: callers must prefer a
 * configuration recorded in the file's metadata when there is one.
 */
ClipConfig infer_config(const std::map<std::string, at::Tensor>& state);

}  // namespace clip::model
