// Activation checkpointing: a segment of the network (a transformer block, a ResNet stage) keeps only
// its inputs from the forward and runs again in backward to rebuild what its gradient needs, so a step
// holds one segment's activations at a time instead of every segment's. The recomputation reproduces
// the forward's autocast state and compute weights (model/compute_weights.h), so it computes the same
// values with the same kernels: gradients equal those of the plain forward.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <functional>
#include <utility>
#include <vector>

namespace clip::model {

/** Turns checkpointing on for the forwards run on this thread while it lives (only where grad mode is on). */
class CheckpointScope {
 public:
  explicit CheckpointScope(bool on);
  ~CheckpointScope();
  CheckpointScope(const CheckpointScope&) = delete;
  CheckpointScope& operator=(const CheckpointScope&) = delete;

 private:
  bool previous_;
};

/** Whether a segment run now should be checkpointed: inside an enabled CheckpointScope, with grad mode on. */
bool checkpointing();

/**
 * The running statistics of `module`'s train-mode BatchNorms as they are now; restore() puts them
 * back, so that a forward that will run again (a recomputation, a contrastive group's first pass)
 * updates them once. Eval-mode statistics are not kept: nothing changes them.
 */
class RunningStatistics {
 public:
  explicit RunningStatistics(torch::nn::Module& module);
  void restore() const;

 private:
  std::vector<std::pair<at::Tensor, at::Tensor>> saved_;  // each buffer, and its value at construction
};

/** A segment: defined tensors in, tensors out. It must read its parameters only through `module`. */
using Segment = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

/**
 * segment(inputs), keeping only `inputs` for backward, where the segment runs again under the same
 * autocast state and compute weights. `module` owns every parameter and buffer the segment reads;
 * BatchNorm running statistics are restored after the recomputation, so they are updated once.
 */
std::vector<at::Tensor> checkpointed(const Segment& segment, const std::vector<at::Tensor>& inputs, torch::nn::Module& module);

}  // namespace clip::model
