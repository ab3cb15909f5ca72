#include "runtime/cuda_graph.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

// Set CLIP_NATIVE_NO_CUDA_GRAPHS (e.g. CXXFLAGS=-DCLIP_NATIVE_NO_CUDA_GRAPHS) to build without them.
#if defined(CLIP_NATIVE_WITH_CUDA) && !defined(CLIP_NATIVE_NO_CUDA_GRAPHS) && __has_include(<cuda_runtime_api.h>) && \
    __has_include(<ATen/cuda/CUDAGraph.h>)
#define CLIP_NATIVE_CUDA_GRAPHS 1
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace clip::runtime {

struct CudaGraph::Impl {
  std::function<void()> emulated_body;
#ifdef CLIP_NATIVE_CUDA_GRAPHS
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  c10::Device device = c10::Device(c10::kCUDA, 0);
#endif
};

CudaGraph::CudaGraph() : impl_(std::make_unique<Impl>()) {}
CudaGraph::~CudaGraph() = default;

bool CudaGraph::emulated() {
  static const bool on = [] {
    const char* value = std::getenv("CLIP_NATIVE_EMULATE_CUDA_GRAPHS");
    return value != nullptr && std::strcmp(value, "1") == 0;
  }();
  return on;
}

bool CudaGraph::emulated_out_of_memory() {
  const char* value = std::getenv("CLIP_NATIVE_EMULATE_OOM_BESIDE_GRAPH");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

#ifdef CLIP_NATIVE_CUDA_GRAPHS
bool CudaGraph::available() { return true; }
void CudaGraph::release_cached_memory() { c10::cuda::CUDACachingAllocator::emptyCache(); }
#else
bool CudaGraph::available() { return false; }
void CudaGraph::release_cached_memory() {}
#endif

void CudaGraph::capture(c10::Device device, const std::function<void()>& warmup, const std::function<void()>& body) {
  if (emulated()) {
    warmup();
    impl_->emulated_body = body;
    return;
  }
#ifdef CLIP_NATIVE_CUDA_GRAPHS
  if (!device.is_cuda()) throw std::invalid_argument("CUDA graphs need a CUDA device, got " + device.str());
  impl_->graph.reset();
  c10::cuda::CUDAGuard device_guard(device);
  // Capture must not happen on the default stream. It happens once, so plain synchronisation orders
  // it after the work already queued (the copies into the graph's input buffers).
  const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream();
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  caller.synchronize();
  {
    c10::cuda::CUDAStreamGuard stream_guard(side);
    warmup();
    side.synchronize();
    // The graph gets a private memory pool; hand what the eager steps cached back to the driver first
    // (as torch.cuda.graph does), or a large batch holds its working memory twice.
    c10::cuda::CUDACachingAllocator::emptyCache();
    graph->capture_begin();
    try {
      body();
    } catch (...) {
      // End the capture so the stream leaves capture mode; the half-recorded graph is discarded.
      try {
        graph->capture_end();
      } catch (...) {
      }
      throw;
    }
    graph->capture_end();
  }
  side.synchronize();
  impl_->graph = std::move(graph);
  impl_->device = device;
#else
  (void)device;
  (void)warmup;
  (void)body;
  throw std::runtime_error("this build of clip-native has no CUDA graph support (it needs a LibTorch with CUDA and the CUDA headers)");
#endif
}

void CudaGraph::replay() {
  if (impl_->emulated_body) {
    impl_->emulated_body();
    return;
  }
#ifdef CLIP_NATIVE_CUDA_GRAPHS
  if (impl_->graph) {
    c10::cuda::CUDAGuard device_guard(impl_->device);
    impl_->graph->replay();
    return;
  }
#endif
  throw std::logic_error("CudaGraph::replay() before a successful capture()");
}

bool CudaGraph::captured() const {
#ifdef CLIP_NATIVE_CUDA_GRAPHS
  if (impl_->graph) return true;
#endif
  return static_cast<bool>(impl_->emulated_body);
}

}  // namespace clip::runtime
