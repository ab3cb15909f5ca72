#include "model/model_files.h"

#include <ATen/ATen.h>

#include <set>
#include <sstream>
#include <stdexcept>

#include "io/hf_names.h"
#include "io/weights.h"
#include "model/config_json.h"
#include "model/config_size.h"

namespace clip::model {
namespace {

NamedTensors to_pairs(const std::vector<io::NamedTensor>& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.emplace_back(t.name, t.tensor);
  return out;
}

std::vector<io::NamedTensor> to_named(const NamedTensors& pairs) {
  std::vector<io::NamedTensor> out;
  out.reserve(pairs.size());
  for (const auto& [name, tensor] : pairs) out.push_back({name, tensor});
  return out;
}

// One NaN or Inf weight makes every output NaN, silently: refused at load, naming the tensor.
void refuse_non_finite(const std::string& path, const NamedTensors& weights) {
  for (const auto& [name, tensor] : weights) {
    if (!at::isFloatingType(tensor.scalar_type()) || at::isfinite(tensor).all().item<bool>()) continue;
    const int64_t nan = at::isnan(tensor).sum().item<int64_t>();
    const int64_t inf = tensor.numel() - nan - at::isfinite(tensor).sum().item<int64_t>();
    throw std::invalid_argument(path + ": tensor '" + name + "' holds " + std::to_string(nan) + " NaN and " + std::to_string(inf) +
                                " infinite value(s) of " + std::to_string(tensor.numel()) + "; a model with them gives NaN outputs, so it is refused");
  }
}

// A configuration stated by the file (or given) must not allocate far more than the file holds: its
// sizes could come from a stranger's metadata. A strict load needs every parameter from the file.
void refuse_larger_than_file(const std::string& path, const ClipConfig& config, const std::string& source, const NamedTensors& weights, bool strict) {
  if (!strict) return;
  double held = 0;
  for (const auto& entry : weights) held += static_cast<double>(entry.second.numel());
  const double wanted = minimum_parameters(config);
  if (wanted <= held * 1.05 + 1e6) return;
  std::ostringstream text;
  text.precision(3);
  text << path << ": its configuration (" << source << ") describes a model of at least " << wanted << " parameters, but the file holds "
       << held << " values; refused before building it (a size in the configuration is wrong)";
  throw std::invalid_argument(text.str());
}

// Several shards as one file, named by the first.
io::TensorFile read_shards(const std::vector<std::string>& paths) {
  if (paths.empty()) throw std::invalid_argument("no weight file given");
  io::TensorFile merged = io::read_weights(paths[0]);
  std::set<std::string> names;
  for (const auto& t : merged.tensors) names.insert(t.name);
  for (size_t i = 1; i < paths.size(); ++i) {
    io::TensorFile shard = io::read_weights(paths[i]);
    for (auto& t : shard.tensors) {
      if (!names.insert(t.name).second) throw std::invalid_argument(paths[i] + ": tensor '" + t.name + "' is also in another shard");
      merged.tensors.push_back(std::move(t));
    }
  }
  return merged;
}

}  // namespace

LoadedModel load_model_file(const std::string& path, const std::optional<ClipConfig>& config, bool strict) {
  return load_model_files({path}, config, strict);
}

LoadedModel load_model_files(const std::vector<std::string>& paths, const std::optional<ClipConfig>& config, bool strict) {
  io::TensorFile file = read_shards(paths);
  const std::string& path = paths[0];
  LoadedModel loaded;
  loaded.format = file.format;
  loaded.metadata = file.metadata;
  std::vector<io::NamedTensor> tensors = std::move(file.tensors);
  if (io::has_hf_clip_names(tensors)) {
    tensors = io::hf_to_openai(tensors, {.keep_unknown = !strict});
    loaded.hf_names = true;
  }
  NamedTensors weights = to_pairs(tensors);
  refuse_non_finite(path, weights);

  ClipConfig resolved;
  if (config) {
    resolved = *config;
    loaded.config_source = "given";
  } else if (auto it = file.metadata.find("config"); it != file.metadata.end()) {
    try {
      resolved = config_from_json(it->second);
    } catch (const std::exception& e) {
      throw std::invalid_argument(path + ": its metadata 'config' is not a valid CLIP configuration: " + e.what());
    }
    loaded.config_source = "metadata";
  } else {
    std::map<std::string, at::Tensor> by_name(weights.begin(), weights.end());
    try {
      resolved = infer_config(by_name);
    } catch (const std::exception& e) {
      throw std::invalid_argument(path + ": " + e.what());
    }
    loaded.config_source = "inferred";
    // A TorchScript archive records the text head count in its traced graph; prefer it to width / 64.
    if (auto heads = file.metadata.find("transformer_heads"); heads != file.metadata.end()) {
      resolved.transformer_heads = std::stoll(heads->second);
      resolved.validate();
      loaded.config_source = "inferred (text heads from the TorchScript graph)";
    }
  }
  refuse_larger_than_file(paths[0], resolved, loaded.config_source, weights, strict);
  loaded.model = Clip(resolved);
  try {
    loaded.report = load_state_dict(*loaded.model, weights, strict);
  } catch (const std::exception& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  return loaded;
}

ModelSnapshot snapshot_model(Clip& model, WeightNaming naming) {
  if (naming == WeightNaming::kHuggingFace && model->config().is_resnet())
    throw std::invalid_argument("Hugging Face CLIPModel naming exists for ViT models only");
  NamedTensors state = state_dict(*model);
  for (auto& [name, tensor] : state) {
    // A CPU parameter would come back from .to(kCPU) as itself, which the next step changes.
    tensor = tensor.is_cpu() ? tensor.detach().clone(at::MemoryFormat::Contiguous) : tensor.detach().to(at::kCPU).contiguous();
  }
  ModelSnapshot snapshot{to_named(state), model->config()};
  if (naming == WeightNaming::kHuggingFace) snapshot.tensors = io::openai_to_hf(snapshot.tensors);
  return snapshot;
}

void write_model_file(const ModelSnapshot& snapshot, const std::string& path, const std::string& format, std::map<std::string, std::string> metadata) {
  if (format == "safetensors") {
    metadata["config"] = config_to_json(snapshot.config);
    if (!metadata.count("format")) metadata["format"] = "pt";
    io::write_safetensors(path, snapshot.tensors, metadata);
  } else if (format == "pt") {
    c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
    for (const auto& t : snapshot.tensors) dict.insert(t.name, t.tensor);
    io::write_torch_pickle(path, dict);
  } else {
    throw std::invalid_argument("unknown weight format '" + format + "': use safetensors or pt");
  }
}


}  // namespace clip::model
