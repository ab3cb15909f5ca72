// Other code paths, switched on per process by the environment: CLIP_NATIVE_EXPERIMENTS=name[,name…].
// Every name is declared once, with what it switches, its default per device and the test or
// measurement that keeps it, in src/experiments.ts; an unknown name is refused there before the addon
// loads, and test/experiments-table.test.ts checks that each name read here is declared there. Paths
// the GPU benchmark (bench/gpu.sh) measured faster became CUDA's default (CudaDefault); a second name
// brings back the path they replaced, for measuring and for tests, which cover both.
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

/**
 * A path measured faster on CUDA and made its default there (bench/results/levers.md): taken on CUDA
 * unless experiment `off` is listed, and on any device where experiment `on` is (the CPU keeps the
 * reference's formulation by default). Read when the module is built, like every experiment.
 */
struct CudaDefault {
  bool on, off;
  CudaDefault(const std::string& on_name, const std::string& off_name) : on(experiment_enabled(on_name)), off(experiment_enabled(off_name)) {}
  bool taken(bool cuda) const { return on || (cuda && !off); }
};

}  // namespace clip
