// Weight-file I/O: safetensors, torch.save pickles and TorchScript archives.
// Plain C++ on top of LibTorch; every failure throws std::runtime_error (or
// c10::Error) whose message names the file and, where there is one, the key.
#pragma once

#include <ATen/core/ivalue.h>
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace clip::io {

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
};

struct TensorFile {
  std::vector<NamedTensor> tensors;
  std::map<std::string, std::string> metadata;
  std::string format;  // "safetensors" | "torch-pickle" | "torchscript"
};

// Tensors come back on the CPU, contiguous, each owning its memory, in file
// order (the order of the JSON header).
TensorFile read_safetensors(const std::string& path);

// Writes CPU copies in (itemsize descending, name) order so every tensor is
// aligned to its element size; replaces `path` atomically.
void write_safetensors(const std::string& path,
                       const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

// Reads what Python's torch.save wrote, refusing any pickle global outside a
// small allow-list (so a stranger's file cannot run code). Dicts come back as
// GenericDict (insertion order kept), tuples as tuples, lists as GenericList.
c10::IValue read_torch_pickle(const std::string& path);

// Writes a file that Python's torch.load reads with weights_only=True.
// Dicts whose values are all tensors become OrderedDicts (like state_dict()),
// other dicts plain dicts. Tensors are saved as contiguous CPU copies, one
// storage each. Replaces `path` atomically.
void write_torch_pickle(const std::string& path, const c10::IValue& value);

// A TorchScript archive (OpenAI's released .pt files) read as data, never as
// code: data.pkl through the same restricted unpickler as torch.save files,
// its modules' tensors in state_dict() order, plus the int attributes OpenAI's
// archives carry (input_resolution, context_length, vocab_size) as 0-dim int64
// tensors. An archive whose code defines __setstate__ is refused.
TensorFile read_torchscript(const std::string& path);

// Sniffs the format by content and returns a flat state dict: for pickles the
// dict itself or the one under "state_dict" / "model" / "network" / "module";
// a "module." prefix shared by every key is stripped.
TensorFile read_weights(const std::string& path);

}  // namespace clip::io
