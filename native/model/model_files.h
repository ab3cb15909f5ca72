// A CLIP model from a weight file (any format native/io reads) and back to a file.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "model/clip.h"
#include "model/state_dict.h"

namespace clip::model {

struct LoadedModel {
  Clip model{nullptr};
  LoadReport report;
  std::string format;         // safetensors | torch-pickle | torchscript
  std::string config_source;  // given | metadata | inferred
  bool hf_names = false;      // the file used Hugging Face CLIPModel names
  std::map<std::string, std::string> metadata;
};

/**
 * Builds the model the file describes and loads its weights as fp32. The configuration is, in order:
 * `config` when given, the file's `config` metadata, else inferred from names and shapes.
 */
LoadedModel load_model_file(const std::string& path, const std::optional<ClipConfig>& config, bool strict);

enum class WeightNaming { kOpenAI, kHuggingFace };

/** Saves fp32 CPU copies of the weights. safetensors carry the configuration in their metadata. */
void save_model_file(Clip& model, const std::string& path, const std::string& format, WeightNaming naming,
                     std::map<std::string, std::string> metadata);

}  // namespace clip::model
