// A CLIP model from a weight file (any format native/io reads) and back to a file.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "io/weights.h"
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

/**
 * The same for a model stored in several files (a sharded checkpoint): their tensors together, a
 * name in two of them an error; metadata and format are the first file's.
 */
LoadedModel load_model_files(const std::vector<std::string>& paths, const std::optional<ClipConfig>& config, bool strict);

enum class WeightNaming { kOpenAI, kHuggingFace };

/** The weights as fp32 CPU tensors of their own (copies even on the CPU), and the configuration. */
struct ModelSnapshot {
  std::vector<io::NamedTensor> tensors;
  ClipConfig config;
};

/** Only this needs the model to itself: the file can be written while training goes on. */
ModelSnapshot snapshot_model(Clip& model, WeightNaming naming);

/** Writes a snapshot as safetensors (with the configuration in its metadata) or pt. */
void write_model_file(const ModelSnapshot& snapshot, const std::string& path, const std::string& format, std::map<std::string, std::string> metadata);


}  // namespace clip::model
