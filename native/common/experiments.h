// Other code paths, switched on per process by the environment: CLIP_NATIVE_EXPERIMENTS=name[,name…].
// Performance experiments stay off until the GPU benchmark (bench/gpu.sh) shows them faster than the
// default path; reference forms (reference-mlp) keep the reference's formulation of a step the default
// path computes another way. Tests cover both paths.
#pragma once
#include <cstdlib>
#include <sstream>
#include <string>

namespace clip {

/** Whether `name` is listed in CLIP_NATIVE_EXPERIMENTS (read at each call: models read it when built). */
inline bool experiment_enabled(const std::string& name) {
  const char* list = std::getenv("CLIP_NATIVE_EXPERIMENTS");
  if (list == nullptr) return false;
  std::stringstream items(list);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item == name) return true;
  }
  return false;
}

}  // namespace clip
