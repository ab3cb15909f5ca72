// Ownership shared between the JS Model object, pending async work and trainers: a model is freed
// when the last of them lets go, so dispose() during a running step cannot free it under the step.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <mutex>

#include "model/clip.h"

namespace clip::binding {

struct ModelHandle {
  model::Clip model{nullptr};
  at::Device device{at::kCPU};
  /** Serialises work on this model: one forward, step or save at a time. */
  std::mutex mutex;
};

using ModelPtr = std::shared_ptr<ModelHandle>;

}  // namespace clip::binding
