#include "runtime/info.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#ifdef CLIP_NATIVE_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

namespace clip {

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.torch_version = TORCH_VERSION;
#ifdef CLIP_NATIVE_WITH_CUDA
  info.built_with_cuda = true;
#else
  info.built_with_cuda = false;
#endif
  info.cuda_available = torch::cuda::is_available();
  info.threads = at::get_num_threads();
  info.cpu_bf16 = true;
  info.parallel_info = at::get_parallel_info();
#ifdef CLIP_NATIVE_WITH_CUDA
  if (info.cuda_available) {
    const int count = static_cast<int>(torch::cuda::device_count());
    for (int i = 0; i < count; ++i) {
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
      info.devices.push_back({i, prop.name, std::to_string(prop.major) + "." + std::to_string(prop.minor),
                              static_cast<int64_t>(prop.totalGlobalMem), prop.major >= 8});
    }
  }
#endif
  return info;
}

}  // namespace clip
