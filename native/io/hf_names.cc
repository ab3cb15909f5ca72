#include "hf_names.h"

#include <ATen/ATen.h>

#include <functional>
#include <set>
#include <stdexcept>
#include <unordered_map>

namespace clip::io {
namespace {

enum class Layout { Same, Transposed, FusedQkv };

// One OpenAI tensor and the HF tensor(s) it is made of.
struct Pair {
  std::string openai;
  std::vector<std::string> hf;  // three (q, k, v) for FusedQkv
  Layout layout = Layout::Same;
};

const std::set<std::string> kOpenAiConfigEntries = {"input_resolution", "context_length", "vocab_size"};

void add_block(std::vector<Pair>& pairs, const std::string& oa, const std::string& hf) {
  const std::string attn = hf + "self_attn.";
  for (const char* p : {"weight", "bias"})
    pairs.push_back({oa + "attn.in_proj_" + p, {attn + "q_proj." + p, attn + "k_proj." + p, attn + "v_proj." + p},
                     Layout::FusedQkv});
  const std::pair<const char*, const char*> renames[] = {
      {"attn.out_proj.", "self_attn.out_proj."}, {"ln_1.", "layer_norm1."}, {"mlp.c_fc.", "mlp.fc1."},
      {"mlp.c_proj.", "mlp.fc2."},               {"ln_2.", "layer_norm2."}};
  for (const auto& [o, h] : renames)
    for (const char* p : {"weight", "bias"}) pairs.push_back({oa + o + p, {hf + h + p}});
}

void add_layer_norm(std::vector<Pair>& pairs, const std::string& oa, const std::string& hf) {
  for (const char* p : {"weight", "bias"}) pairs.push_back({oa + p, {hf + p}});
}

// All pairs, in the order OpenAI's CLIP.state_dict() lists them.
std::vector<Pair> pairs_in_openai_order(int text_layers, int vision_layers) {
  std::vector<Pair> pairs = {
      {"positional_embedding", {"text_model.embeddings.position_embedding.weight"}},
      {"text_projection", {"text_projection.weight"}, Layout::Transposed},
      {"logit_scale", {"logit_scale"}},
      {"visual.class_embedding", {"vision_model.embeddings.class_embedding"}},
      {"visual.positional_embedding", {"vision_model.embeddings.position_embedding.weight"}},
      {"visual.proj", {"visual_projection.weight"}, Layout::Transposed},
      {"visual.conv1.weight", {"vision_model.embeddings.patch_embedding.weight"}},
  };
  add_layer_norm(pairs, "visual.ln_pre.", "vision_model.pre_layrnorm.");
  for (int i = 0; i < vision_layers; ++i)
    add_block(pairs, "visual.transformer.resblocks." + std::to_string(i) + ".",
              "vision_model.encoder.layers." + std::to_string(i) + ".");
  add_layer_norm(pairs, "visual.ln_post.", "vision_model.post_layernorm.");
  for (int i = 0; i < text_layers; ++i)
    add_block(pairs, "transformer.resblocks." + std::to_string(i) + ".",
              "text_model.encoder.layers." + std::to_string(i) + ".");
  pairs.push_back({"token_embedding.weight", {"text_model.embeddings.token_embedding.weight"}});
  add_layer_norm(pairs, "ln_final.", "text_model.final_layer_norm.");
  return pairs;
}

// HF names in the order transformers' CLIPModel.state_dict() lists them.
std::vector<std::string> hf_order(int text_layers, int vision_layers) {
  std::vector<std::string> names = {"logit_scale", "text_model.embeddings.token_embedding.weight",
                                    "text_model.embeddings.position_embedding.weight"};
  auto layer = [&](const std::string& prefix) {
    for (const char* m : {"self_attn.k_proj.", "self_attn.v_proj.", "self_attn.q_proj.", "self_attn.out_proj.",
                          "layer_norm1.", "mlp.fc1.", "mlp.fc2.", "layer_norm2."})
      for (const char* p : {"weight", "bias"}) names.push_back(prefix + m + p);
  };
  for (int i = 0; i < text_layers; ++i) layer("text_model.encoder.layers." + std::to_string(i) + ".");
  for (const char* p : {"weight", "bias"}) names.push_back(std::string("text_model.final_layer_norm.") + p);
  for (const char* n : {"vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
                        "vision_model.embeddings.position_embedding.weight"})
    names.push_back(n);
  for (const char* p : {"weight", "bias"}) names.push_back(std::string("vision_model.pre_layrnorm.") + p);
  for (int i = 0; i < vision_layers; ++i) layer("vision_model.encoder.layers." + std::to_string(i) + ".");
  for (const char* p : {"weight", "bias"}) names.push_back(std::string("vision_model.post_layernorm.") + p);
  names.push_back("visual_projection.weight");
  names.push_back("text_projection.weight");
  return names;
}

// 1 + the largest N among keys "<prefix>N.<...>", or 0.
int count_layers(const std::vector<NamedTensor>& tensors, const std::string& prefix) {
  int count = 0;
  for (const auto& t : tensors) {
    if (t.name.rfind(prefix, 0) != 0) continue;
    size_t end = t.name.find('.', prefix.size());
    if (end == std::string::npos || end == prefix.size()) continue;
    try {
      count = std::max(count, std::stoi(t.name.substr(prefix.size(), end - prefix.size())) + 1);
    } catch (const std::exception&) {
    }
  }
  return count;
}

using TensorMap = std::unordered_map<std::string, at::Tensor>;

TensorMap by_name(const std::vector<NamedTensor>& tensors) {
  TensorMap map;
  for (const auto& t : tensors)
    if (!map.emplace(t.name, t.tensor).second) throw std::runtime_error("duplicate tensor name \"" + t.name + "\"");
  return map;
}

const at::Tensor& need(const TensorMap& map, const std::string& name, const char* naming) {
  auto it = map.find(name);
  if (it == map.end()) throw std::runtime_error(std::string("missing ") + naming + " tensor \"" + name + "\"");
  return it->second;
}

bool is_position_ids(const std::string& name) {
  const std::string suffix = "position_ids";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void check_unused(const std::vector<NamedTensor>& input, const std::set<std::string>& used,
                  const std::function<bool(const std::string&)>& droppable, const HfNameOptions& options,
                  std::vector<NamedTensor>& out) {
  for (const auto& t : input) {
    if (used.count(t.name) || droppable(t.name)) continue;
    if (!options.keep_unknown) throw std::runtime_error("unexpected tensor \"" + t.name + "\" for CLIP ViT naming");
    out.push_back(t);
  }
}

}  // namespace

bool has_hf_clip_names(const std::vector<NamedTensor>& tensors) {
  for (const auto& t : tensors)
    if (t.name.rfind("text_model.", 0) == 0 || t.name.rfind("vision_model.", 0) == 0) return true;
  return false;
}

std::vector<NamedTensor> hf_to_openai(const std::vector<NamedTensor>& hf, const HfNameOptions& options) {
  const TensorMap map = by_name(hf);
  const auto pairs = pairs_in_openai_order(count_layers(hf, "text_model.encoder.layers."),
                                           count_layers(hf, "vision_model.encoder.layers."));
  std::vector<NamedTensor> out;
  std::set<std::string> used;
  for (const auto& pair : pairs) {
    for (const auto& n : pair.hf) used.insert(n);
    switch (pair.layout) {
      case Layout::Same: out.push_back({pair.openai, need(map, pair.hf[0], "HF")}); break;
      case Layout::Transposed: out.push_back({pair.openai, need(map, pair.hf[0], "HF").t().contiguous()}); break;
      case Layout::FusedQkv:
        out.push_back({pair.openai, at::cat({need(map, pair.hf[0], "HF"), need(map, pair.hf[1], "HF"),
                                             need(map, pair.hf[2], "HF")}, 0)});
        break;
    }
  }
  check_unused(hf, used, is_position_ids, options, out);
  return out;
}

std::vector<NamedTensor> openai_to_hf(const std::vector<NamedTensor>& openai, const HfNameOptions& options) {
  const TensorMap map = by_name(openai);
  if (map.count("visual.layer1.0.conv1.weight") || map.count("visual.attnpool.positional_embedding"))
    throw std::runtime_error("a ResNet CLIP has no Hugging Face CLIPModel naming");
  const int text_layers = count_layers(openai, "transformer.resblocks.");
  const int vision_layers = count_layers(openai, "visual.transformer.resblocks.");
  TensorMap hf;
  std::set<std::string> used;
  for (const auto& pair : pairs_in_openai_order(text_layers, vision_layers)) {
    const at::Tensor& t = need(map, pair.openai, "OpenAI");
    used.insert(pair.openai);
    switch (pair.layout) {
      case Layout::Same: hf[pair.hf[0]] = t; break;
      case Layout::Transposed: hf[pair.hf[0]] = t.t().contiguous(); break;
      case Layout::FusedQkv: {
        if (t.dim() < 1 || t.size(0) % 3 != 0)
          throw std::runtime_error("\"" + pair.openai + "\" cannot be split into q, k and v");
        auto parts = t.chunk(3, 0);
        for (int i = 0; i < 3; ++i) hf[pair.hf[i]] = parts[i].contiguous();
        break;
      }
    }
  }
  std::vector<NamedTensor> out;
  for (const auto& name : hf_order(text_layers, vision_layers)) out.push_back({name, hf.at(name)});
  check_unused(openai, used, [](const std::string& n) { return kOpenAiConfigEntries.count(n) > 0; }, options, out);
  return out;
}

}  // namespace clip::io
