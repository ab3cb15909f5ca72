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
  std::vector<CudaDevice> devices;
  int threads;
  bool cpu_bf16;  // bf16 autocast works on this CPU (always true with LibTorch's CPU kernels)
  std::string parallel_info;
};

RuntimeInfo runtime_info();

}  // namespace clip
