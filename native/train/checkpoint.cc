#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>

#include "io/weights.h"
#include "model/config_json.h"
#include "model/state_dict.h"

namespace clip::train {
namespace {

constexpr const char* kMarker = "clip_native_checkpoint";
const std::string kModelPrefix = "model.";

at::Tensor counter(int64_t value) { return at::full({}, value, at::kLong); }

}  // namespace

void save_checkpoint(const std::string& path, model::Clip& model, Trainer& trainer, std::map<std::string, std::string> metadata) {
  if (trainer.pending_micro_batches() > 0)
    throw std::logic_error("a checkpoint between the micro-batches of one optimizer step would lose their gradients; finish the group or flush() first");
  std::vector<io::NamedTensor> tensors;
  for (auto& [name, tensor] : model::state_dict(*model)) tensors.push_back({kModelPrefix + name, tensor.detach().to(at::kCPU).contiguous()});
  for (auto& [name, tensor] : trainer.state_tensors()) tensors.push_back({name, tensor});
  const TrainerCounters& c = trainer.counters();
  tensors.push_back({"trainer.optimizer_steps", counter(c.optimizer_steps)});
  tensors.push_back({"trainer.micro_steps", counter(c.micro_steps)});
  // The text length reached so far: a resumed run trims its batches as the uninterrupted one does.
  tensors.push_back({"trainer.text_length", counter(trainer.text_length())});
  tensors.push_back({"rng.cpu", at::detail::getDefaultCPUGenerator().get_state()});
  metadata[kMarker] = "1";
  metadata["config"] = model::config_to_json(model->config());
  io::write_safetensors(path, tensors, metadata);
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, model::Clip& model, Trainer& trainer) {
  io::TensorFile file = io::read_safetensors(path);
  if (!file.metadata.count(kMarker))
    throw std::invalid_argument(path + " is not a clip-native training checkpoint (no '" + kMarker + "' metadata); to start from its weights, pass it as the model instead");
  const std::string theirs = file.metadata.count("config") ? file.metadata.at("config") : "";
  const std::string ours = model::config_to_json(model->config());
  if (model::config_to_json(model::config_from_json(theirs)) != ours)
    throw std::invalid_argument(path + " was made for another architecture: checkpoint " + theirs + ", this run " + ours);
  model::NamedTensors weights, state;
  std::map<std::string, at::Tensor> scalars;
  for (auto& t : file.tensors) {
    if (t.name.rfind(kModelPrefix, 0) == 0) weights.emplace_back(t.name.substr(kModelPrefix.size()), t.tensor);
    else state.emplace_back(t.name, t.tensor);
    scalars[t.name] = t.tensor;
  }
  try {
    model::load_state_dict(*model, weights, /*strict=*/true);
    trainer.load_state_tensors(state);
  } catch (const std::exception& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  for (const char* name : {"trainer.optimizer_steps", "trainer.micro_steps", "rng.cpu"}) {
    if (!scalars.count(name)) throw std::invalid_argument(path + ": checkpoint has no '" + name + "'");
  }
  TrainerCounters& c = trainer.counters();
  c.optimizer_steps = scalars["trainer.optimizer_steps"].item<int64_t>();
  c.micro_steps = scalars["trainer.micro_steps"].item<int64_t>();
  // Absent from checkpoints written before text trimming: those start again from the batch's own length.
  trainer.set_text_length(scalars.count("trainer.text_length") ? scalars["trainer.text_length"].item<int64_t>() : 0);
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(scalars["rng.cpu"]);
  return file.metadata;
}

}  // namespace clip::train
