// read_torchscript: OpenAI's released `.pt` files are TorchScript archives. They are read as data:
// data.pkl through the restricted unpickler, its `__torch__.*` modules as inert records of
// attributes, tensors from data/ by their persistent ids. The archive's code/ is never compiled or
// run (torch::jit::load would run a class's __setstate__); it is only searched as text, for the
// text head count and for a __setstate__ that would make the records mean something else.
#include "weights.h"

#include "torch_pickle.h"
#include "zip_records.h"

#include <ATen/ATen.h>

#include <cctype>
#include <stdexcept>
#include <unordered_set>

namespace clip::io {
namespace {

using pickle::Object;
using pickle::Ref;
using Kind = Object::Kind;

// OpenAI's released archives keep these in state_dict() next to the weights.
constexpr const char* kConfigAttributes[] = {"input_resolution", "context_length", "vocab_size"};
// Deeper than any CLIP's module tree; a record that contains itself ends here.
constexpr int kMaxModuleDepth = 64;

const Ref* attribute(const Ref& record, const std::string& name) {
  for (const auto& [key, value] : record->entries)
    if (key->text == name) return &value;
  return nullptr;
}

bool is_config_attribute(const std::string& name) {
  for (const char* c : kConfigAttributes)
    if (name == c) return true;
  return false;
}

// The order Python's Module.state_dict() uses: the module's own tensors, then each child in turn.
// Attributes that are neither (training flags, hooks, None) are not state.
void collect_state(const Ref& module, const std::string& prefix, int depth, std::vector<NamedTensor>& out) {
  if (depth > kMaxModuleDepth) throw std::runtime_error("modules nest more than " + std::to_string(kMaxModuleDepth) + " levels deep (or contain themselves)");
  std::vector<const std::pair<Ref, Ref>*> children;
  for (const auto& entry : module->entries) {
    const auto& [key, value] = entry;
    if (value->kind == Kind::Tensor) out.push_back({prefix + key->text, value->tensor.contiguous()});
    else if (value->kind == Kind::Record) children.push_back(&entry);
    else if (depth == 0 && value->kind == Kind::Int && is_config_attribute(key->text))
      out.push_back({key->text, at::scalar_tensor(value->integer, at::kLong)});
  }
  for (const auto* child : children) collect_state(child->second, prefix + child->first->text + ".", depth + 1, out);
}

// torch::jit::load runs a class's __setstate__ with the pickled state; without running it, the
// records could mean something else than the code makes of them. CLIP archives define none.
void refuse_load_time_code(ZipRecords& zip) {
  for (const auto& name : zip.names_with_prefix("code/")) {
    if (name.size() < 3 || name.compare(name.size() - 3, 3, ".py") != 0) continue;
    if (zip.text(name).find("__setstate__") != std::string::npos)
      throw std::runtime_error(name + " defines __setstate__, code that torch.jit.load would run on loading; "
                               "clip-native never runs a file's code, so this archive is refused");
  }
}

std::string identifier_at(const std::string& text, size_t at) {
  size_t end = at;
  while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
  return text.substr(at, end - at);
}

// In a traced nn.MultiheadAttention, `head_dim = embed_dim / num_heads` reads
// `torch.div(embed_dim, CONSTANTS.cN, ...)` (`floor_divide` in older tracers), with embed_dim from
// ops.prim.NumToTensor and the head count in constants.pkl. Returns N, or -1.
int64_t head_constant_index(const std::string& body) {
  for (const char* call : {"torch.div(", "torch.floor_divide("}) {
    const std::string marker(call);
    for (size_t at = body.find(marker); at != std::string::npos; at = body.find(marker, at + 1)) {
      const size_t arg = at + marker.size();
      const std::string dividend = identifier_at(body, arg);
      const std::string divisor = ", CONSTANTS.c";
      if (dividend.empty() || body.compare(arg + dividend.size(), divisor.size(), divisor) != 0) continue;
      if (body.find(dividend + " = ops.prim.NumToTensor(") == std::string::npos) continue;
      const std::string digits = identifier_at(body, arg + dividend.size() + divisor.size());
      if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
      return std::stoll(digits);
    }
  }
  return -1;
}

// The source of class `name` in a code/ record: from its `class` line to the next one.
std::string class_body(const std::string& source, const std::string& name) {
  const std::string header = "class " + name + "(";
  size_t start = source.rfind(header, 0) == 0 ? 0 : source.find("\n" + header);
  if (start == std::string::npos) return {};
  size_t end = source.find("\nclass ", start + 1);
  return source.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

/**
 * The text transformer's head count, which the weights cannot tell (the reference's build_model
 * guesses width / 64): read from the first text block's traced attention code and its constant.
 * Returns 0 when the archive is not shaped that way.
 */
int64_t traced_text_heads(ZipRecords& zip, const Ref& root) {
  const Ref* node = &root;
  for (const char* step : {"transformer", "resblocks", "0", "attn"}) {
    node = attribute(*node, step);
    if (!node || (*node)->kind != Kind::Record) return 0;
  }
  const std::string& qualified = (*node)->text;  // __torch__.torch.nn.modules.activation.MultiheadAttention
  const size_t dot = qualified.rfind('.');
  std::string file = "code/" + qualified.substr(0, dot) + ".py";
  for (size_t i = 5; i < file.size() - 3; ++i)
    if (file[i] == '.') file[i] = '/';
  if (!zip.has(file) || !zip.has("constants.pkl")) return 0;
  const int64_t index = head_constant_index(class_body(zip.text(file), qualified.substr(dot + 1)));
  if (index < 0) return 0;
  const Ref constants = unpickle_torch_record(zip, "constants.pkl", "constants/", PickleFlavour::kTorchScript);
  if (constants->kind != Kind::Tuple || static_cast<size_t>(index) >= constants->items.size()) return 0;
  const Ref& value = constants->items[index];
  if (value->kind != Kind::Tensor || value->tensor.numel() != 1 || !at::isIntegralType(value->tensor.scalar_type(), false)) return 0;
  const int64_t heads = value->tensor.item<int64_t>();
  return heads > 0 ? heads : 0;
}

TensorFile read_records(ZipRecords& zip) {
  refuse_load_time_code(zip);
  if (!zip.has("data.pkl")) throw std::runtime_error("no data.pkl record (not a TorchScript archive)");
  const Ref root = unpickle_torch_record(zip, "data.pkl", "data/", PickleFlavour::kTorchScript);
  if (root->kind != Kind::Record) throw std::runtime_error(std::string("data.pkl holds a ") + pickle::kind_name(root->kind) + ", not a TorchScript module");
  TensorFile result;
  result.format = "torchscript";
  collect_state(root, "", 0, result.tensors);
  std::unordered_set<std::string> seen;
  for (const auto& t : result.tensors)
    if (!seen.insert(t.name).second) throw std::runtime_error("two tensors are named '" + t.name + "'");
  if (const int64_t heads = traced_text_heads(zip, root); heads > 0) result.metadata["transformer_heads"] = std::to_string(heads);
  return result;
}

}  // namespace

TensorFile read_torchscript(const std::string& path) {
  try {
    ZipRecords zip(path);
    return read_records(zip);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": " + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace clip::io
