// State dicts in the reference's naming and order, and loading with a report of what did not fit.
#pragma once
#include <torch/nn.h>

#include <string>
#include <utility>
#include <vector>

namespace clip::model {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/** Parameters and buffers as Python's `module.state_dict()` orders them (module by module, pre-order). */
NamedTensors state_dict(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the weights
  std::vector<std::string> unexpected;  // in the weights, not in the model
  std::vector<std::string> mismatched;  // "name: weights [a, b] vs model [c, d]"
  std::vector<std::string> ignored;     // entries the reference also drops (input_resolution, …)
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string describe() const;
};

/**
 * Copy `weights` into the module's tensors (converted to each tensor's dtype: fp16/bf16 files become
 * fp32 weights). With `strict`, nothing is copied unless every name and shape fits, and the error
 * lists what does not.
 */
LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& weights, bool strict);

}  // namespace clip::model
