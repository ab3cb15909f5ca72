// Full training checkpoints: one safetensors file holding the weights (`model.*`), the optimizer and
// loss-scaler state (`optimizer.*`, `scaler.*`), the trainer's counters and the CPU RNG state, with
// the model configuration and the caller's own state (JSON strings) in its metadata.
#pragma once
#include <map>
#include <string>

#include "model/clip.h"
#include "train/trainer.h"

namespace clip::train {

void save_checkpoint(const std::string& path, model::Clip& model, Trainer& trainer, std::map<std::string, std::string> metadata);

/**
 * Restores weights, optimizer state, counters and RNG into an already built model and trainer.
 * Refuses, with a message naming both, a checkpoint made for another architecture.
 * Returns the file's metadata.
 */
std::map<std::string, std::string> load_checkpoint(const std::string& path, model::Clip& model, Trainer& trainer);

}  // namespace clip::train
