// read_weights: whichever format a user hands us, as one flat state dict.
#include "weights.h"

#include "zip_records.h"

#include <ATen/ATen.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace clip::io {
namespace {

bool looks_like_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  if (size < 10) return false;
  in.seekg(0);
  unsigned char head[9];
  in.read(reinterpret_cast<char*>(head), 9);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | head[i];
  return header_len <= size - 8 && head[8] == '{';
}

// The blog's checkpoints are {epoch, network, optimizer, scheduler}; other
// trainers use these other names for the model's state dict.
constexpr const char* kStateDictKeys[] = {"state_dict", "model_state_dict", "model", "network", "module"};

bool is_state_dict_like(const c10::IValue& v) {
  if (!v.isGenericDict()) return false;
  auto d = v.toGenericDict();
  for (const auto& e : d)
    if (!e.key().isString() || !(e.value().isTensor() || e.value().isInt())) return false;
  return d.size() > 0;
}

std::string scalar_text(const c10::IValue& v) {
  if (v.isString()) return v.toStringRef();
  if (v.isInt()) return std::to_string(v.toInt());
  if (v.isBool()) return v.toBool() ? "true" : "false";
  std::ostringstream s;
  s.precision(17);
  s << v.toDouble();
  return s.str();
}

TensorFile flatten_pickle(const std::string& path, const c10::IValue& root) {
  if (!root.isGenericDict()) throw std::runtime_error(path + ": holds a " + root.tagKind() + ", not a dict of tensors");
  TensorFile result;
  result.format = "torch-pickle";
  c10::IValue chosen = root;
  auto top = root.toGenericDict();
  for (const char* key : kStateDictKeys) {
    auto it = top.find(c10::IValue(std::string(key)));
    if (it != top.end() && is_state_dict_like(it->value())) {
      chosen = it->value();
      // Small facts next to the weights (epoch, step) are worth keeping.
      for (const auto& e : top)
        if (e.key().isString() && (e.value().isInt() || e.value().isDouble() || e.value().isString() || e.value().isBool()))
          result.metadata[e.key().toStringRef()] = scalar_text(e.value());
      break;
    }
  }
  for (const auto& e : chosen.toGenericDict()) {
    if (!e.key().isString()) throw std::runtime_error(path + ": state dict has a non-string key");
    const std::string& name = e.key().toStringRef();
    if (e.value().isTensor()) result.tensors.push_back({name, e.value().toTensor()});
    else if (e.value().isInt()) result.tensors.push_back({name, at::scalar_tensor(e.value().toInt(), at::kLong)});
    else throw std::runtime_error(path + ": \"" + name + "\" is a " + e.value().tagKind() + ", not a tensor");
  }
  return result;
}

void strip_common_module_prefix(std::vector<NamedTensor>& tensors) {
  static const std::string prefix = "module.";  // what DataParallel / DDP add
  if (tensors.empty()) return;
  for (const auto& t : tensors)
    if (t.name.rfind(prefix, 0) != 0) return;
  for (auto& t : tensors) t.name.erase(0, prefix.size());
}

}  // namespace

TensorFile read_weights(const std::string& path) {
  require_regular_file(path);
  TensorFile result;
  if (looks_like_zip(path)) {
    bool torchscript;
    try {
      ZipRecords zip(path);
      torchscript = zip.has("constants.pkl") || zip.has_prefix("code/");
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
    result = torchscript ? read_torchscript(path) : flatten_pickle(path, read_torch_pickle(path));
  } else if (looks_like_safetensors(path)) {
    result = read_safetensors(path);
  } else if (looks_like_legacy_torch_save(path)) {
    throw std::runtime_error(path + ": " + kLegacyTorchSaveMessage);
  } else {
    throw std::runtime_error(path + ": not a safetensors file, torch.save checkpoint or TorchScript archive");
  }
  strip_common_module_prefix(result.tensors);
  return result;
}

}  // namespace clip::io
