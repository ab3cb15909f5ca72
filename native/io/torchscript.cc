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
  return result;
}

}  // namespace clip::io
