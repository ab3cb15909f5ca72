// Hugging Face CLIPModel names <-> OpenAI CLIP names (ViT models only; the HF
// CLIPModel has no ResNet tower). Tensors are shared or, where the layouts
// differ (fused q/k/v, transposed projections), copied; the round trip is
// bitwise.
#pragma once

#include "weights.h"

#include <vector>

namespace clip::io {

struct HfNameOptions {
  // When false, a key that belongs to neither naming is an error (naming the
  // key); when true it is passed through unchanged.
  bool keep_unknown = false;
};

// True when the names are HF CLIPModel's (text_model.*, vision_model.*, ...).
bool has_hf_clip_names(const std::vector<NamedTensor>& tensors);

// HF -> OpenAI, in the order OpenAI's CLIP.state_dict() uses. position_ids
// buffers are dropped.
std::vector<NamedTensor> hf_to_openai(const std::vector<NamedTensor>& hf, const HfNameOptions& options = {});

// OpenAI -> HF, in CLIPModel.state_dict() order. The config entries of
// OpenAI's archives (input_resolution, context_length, vocab_size) are dropped.
std::vector<NamedTensor> openai_to_hf(const std::vector<NamedTensor>& openai, const HfNameOptions& options = {});

}  // namespace clip::io
