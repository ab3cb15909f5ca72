// What this build of the addon links and what the machine offers: the facts `clip-native doctor` prints.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace clip {

struct CudaDevice {
  int index;
  std::string name;
  std::string capability;  // "9.0"
  int64_t memory_bytes;
  bool bf16;
};

struct RuntimeInfo {
  std::string torch_version;
  bool built_with_cuda;
  bool cuda_available;
  bool cuda_graphs;   // the train step can be captured in a CUDA graph (runtime/cuda_graph.h)
  bool cuda_kernels;  // native/kernels/*.cu were built in (nvcc at build time)
  std::vector<CudaDevice> devices;
  int threads;
  bool cpu_bf16;  // bf16 autocast works on this CPU (always true with LibTorch's CPU kernels)
  std::string parallel_info;
};

RuntimeInfo runtime_info();

/** The CUDA caching allocator's byte counts for one device (all zero where this build cannot read them). */
struct CudaMemory {
  bool available = false;
  int64_t allocated = 0, reserved = 0, peak_allocated = 0, peak_reserved = 0;
};

/** Reads the counts, then, with `reset_peak`, starts the peaks anew from the current values. */
CudaMemory cuda_memory(int device, bool reset_peak);

}  // namespace clip
