// read_torchscript: the only translation unit that needs the JIT headers.
#include "weights.h"

#include <torch/script.h>

#include <stdexcept>

namespace clip::io {
namespace {

// OpenAI's released archives keep these in state_dict() next to the weights.
constexpr const char* kConfigAttributes[] = {"input_resolution", "context_length", "vocab_size"};

// The order Python's Module.state_dict() uses: own parameters, own buffers,
// then each child recursively.
void collect_state(const torch::jit::Module& module, const std::string& prefix, std::vector<NamedTensor>& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    out.push_back({prefix + p.name, p.value.detach()});
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    out.push_back({prefix + b.name, b.value.detach()});
  for (const auto& child : module.named_children()) collect_state(child.value, prefix + child.name + ".", out);
}

/**
 * The text transformer's head count, which the weights cannot tell (the reference's build_model
 * guesses width / 64). A traced nn.MultiheadAttention computes `head_dim = embed_dim / num_heads`
 * with num_heads baked in as a constant: find that division in the first text block's graph.
 * Returns 0 when the archive is not shaped that way.
 */
int64_t traced_text_heads(const torch::jit::Module& module) {
  try {
    torch::jit::Module attn = module.attr("transformer").toModule().attr("resblocks").toModule().attr("0").toModule().attr("attn").toModule();
    auto graph = attn.get_method("forward").graph();
    for (const torch::jit::Node* node : graph->nodes()) {
      if (node->kind() != c10::Symbol::fromQualString("aten::div") || node->inputs().size() < 2) continue;
      if (node->input(0)->node()->kind() != c10::prim::NumToTensor) continue;
      const torch::jit::Node* constant = node->input(1)->node();
      if (constant->kind() != c10::prim::Constant || !constant->hasAttribute(c10::attr::value)) continue;
      if (constant->kindOf(c10::attr::value) != torch::jit::AttributeKind::t) continue;
      const at::Tensor value = constant->t(c10::attr::value);
      if (value.numel() == 1 && !at::isFloatingType(value.scalar_type())) return value.item<int64_t>();
    }
  } catch (const std::exception&) {
    // Not a CLIP archive traced this way: leave the head count to the caller's inference.
  }
  return 0;
}

}  // namespace

TensorFile read_torchscript(const std::string& path) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, at::kCPU);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot load as TorchScript: " + e.what_without_backtrace());
  }
  TensorFile result;
  result.format = "torchscript";
  std::vector<NamedTensor> top;
  for (const auto& p : module.named_parameters(false)) top.push_back({p.name, p.value.detach()});
  for (const auto& b : module.named_buffers(false)) top.push_back({b.name, b.value.detach()});
  for (const char* name : kConfigAttributes) {
    bool present = false;
    for (const auto& t : top) present = present || t.name == name;
    if (present || !module.hasattr(name)) continue;
    c10::IValue v = module.attr(name);
    if (v.isInt()) top.push_back({name, at::scalar_tensor(v.toInt(), at::kLong)});
    else if (v.isTensor()) top.push_back({name, v.toTensor().detach()});
  }
  result.tensors = std::move(top);
  for (const auto& child : module.named_children()) collect_state(child.value, child.name + ".", result.tensors);
  for (auto& t : result.tensors) t.tensor = t.tensor.contiguous();
  if (const int64_t heads = traced_text_heads(module); heads > 0) result.metadata["transformer_heads"] = std::to_string(heads);
  return result;
}

}  // namespace clip::io
