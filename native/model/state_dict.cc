#include "model/state_dict.h"

#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace clip::model {
namespace {

void collect(const torch::nn::Module& module, const std::string& prefix, NamedTensors& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
  for (const auto& child : module.named_children()) collect(*child.value(), prefix + child.key() + ".", out);
}

// Entries of OpenAI's released archives that are configuration, not weights (the reference's
// build_model deletes them before loading).
const std::set<std::string> kConfigEntries = {"input_resolution", "context_length", "vocab_size"};

std::string join(const std::vector<std::string>& items, size_t limit = 20) {
  std::ostringstream out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) out << (i ? ", " : "") << items[i];
  if (items.size() > limit) out << ", … (" << items.size() - limit << " more)";
  return out.str();
}

}  // namespace

NamedTensors state_dict(const torch::nn::Module& module) {
  NamedTensors out;
  collect(module, "", out);
  return out;
}

std::string LoadReport::describe() const {
  std::ostringstream out;
  if (!missing.empty()) out << "missing keys (" << missing.size() << "): " << join(missing) << ". ";
  if (!unexpected.empty()) out << "unexpected keys (" << unexpected.size() << "): " << join(unexpected) << ". ";
  if (!mismatched.empty()) out << "shape mismatches (" << mismatched.size() << "): " << join(mismatched, 10) << ". ";
  return out.str();
}

LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& weights, bool strict) {
  LoadReport report;
  NamedTensors targets = state_dict(module);
  std::map<std::string, at::Tensor> by_name;
  for (const auto& [name, tensor] : weights) {
    if (kConfigEntries.count(name)) {
      report.ignored.push_back(name);
      continue;
    }
    by_name[name] = tensor;
  }
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (target, source)
  std::set<std::string> used;
  for (auto& [name, target] : targets) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      report.missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (it->second.sizes() != target.sizes()) {
      report.mismatched.push_back(name + ": weights " + c10::str(it->second.sizes()) + " vs model " + c10::str(target.sizes()));
      continue;
    }
    copies.emplace_back(target, it->second);
  }
  for (const auto& [name, _] : by_name) {
    if (!used.count(name)) report.unexpected.push_back(name);
  }
  if (strict && !report.complete()) {
    throw std::invalid_argument("the weights do not fit this model: " + report.describe() +
                                "Check the architecture (or load with {partial: true} to accept a partial load).");
  }
  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(source.to(target.device(), target.scalar_type()));
  return report;
}

}  // namespace clip::model
