#include "runtime/info.h"

#include "runtime/cuda_graph.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

// Device properties need the CUDA toolkit's headers; a LibTorch with CUDA but a machine without the
// toolkit's headers still builds, listing devices without their properties.
#if defined(CLIP_NATIVE_WITH_CUDA) && !defined(CLIP_NATIVE_NO_CUDA_PROPERTIES) && __has_include(<cuda_runtime_api.h>)
#define CLIP_NATIVE_CUDA_PROPERTIES 1
#include <c10/cuda/CUDACachingAllocator.h>
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
  info.cuda_graphs = runtime::CudaGraph::available();
  // CMakeLists.txt defines CLIP_NATIVE_KERNELS when nvcc compiled native/kernels/*.cu.
#ifdef CLIP_NATIVE_KERNELS
  info.cuda_kernels = true;
#else
  info.cuda_kernels = false;
#endif
  info.threads = at::get_num_threads();
  info.cpu_bf16 = true;
  info.parallel_info = at::get_parallel_info();
  if (info.cuda_available) {
    const int count = static_cast<int>(torch::cuda::device_count());
    for (int i = 0; i < count; ++i) {
#ifdef CLIP_NATIVE_CUDA_PROPERTIES
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
      info.devices.push_back({i, prop.name, std::to_string(prop.major) + "." + std::to_string(prop.minor),
                              static_cast<int64_t>(prop.totalGlobalMem), prop.major >= 8});
#else
      info.devices.push_back({i, "CUDA device " + std::to_string(i), "unknown", 0, false});
#endif
    }
  }
  return info;
}

CudaMemory cuda_memory(int device, bool reset_peak) {
  CudaMemory memory;
#ifdef CLIP_NATIVE_CUDA_PROPERTIES
  if (!torch::cuda::is_available() || device < 0 || device >= static_cast<int>(torch::cuda::device_count())) return memory;
  const auto index = static_cast<c10::DeviceIndex>(device);
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
  constexpr size_t kAggregate = 0;  // StatType::AGGREGATE: every pool together
  memory.available = true;
  memory.allocated = stats.allocated_bytes[kAggregate].current;
  memory.reserved = stats.reserved_bytes[kAggregate].current;
  memory.peak_allocated = stats.allocated_bytes[kAggregate].peak;
  memory.peak_reserved = stats.reserved_bytes[kAggregate].peak;
  if (reset_peak) c10::cuda::CUDACachingAllocator::resetPeakStats(index);
#else
  (void)device;
  (void)reset_peak;
#endif
  return memory;
}

}  // namespace clip
