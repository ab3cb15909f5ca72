// One CUDA graph: records a piece of host code's kernels once and replays them with one launch.
// LibTorch's CUDA graph API exists only where the addon is built against a LibTorch with CUDA and the
// toolkit's headers; elsewhere available() is false and capture() throws.
//
// Test hook: with CLIP_NATIVE_EMULATE_CUDA_GRAPHS=1 in the environment, capture() runs the warm-up and
// keeps the body, and replay() calls the body, on any device. What a graph cannot tell apart from that
// (fixed buffers, values read at replay, the host-side bookkeeping around it) is then tested on a CPU.
#pragma once
#include <c10/core/Device.h>

#include <functional>
#include <memory>

namespace clip::runtime {

class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  /** Whether this build can capture CUDA graphs on a CUDA device. */
  static bool available();
  /** Whether CLIP_NATIVE_EMULATE_CUDA_GRAPHS=1 is set (read once). */
  static bool emulated();
  /**
   * Test hook beside the emulation: CLIP_NATIVE_EMULATE_OOM_BESIDE_GRAPH=1 (read at each call) makes the
   * trainer's eager step fail once for lack of memory while a graph is held, as a large batch's smaller
   * last batch can on a GPU.
   */
  static bool emulated_out_of_memory();
  /** Gives the caching allocator's unused CUDA memory, a released graph's pool included, back to the driver. */
  static void release_cached_memory();

  /**
   * Records the kernels `body` launches on `device` into this graph, on a side stream (capture needs
   * one). The kernels do not run: replay() runs them. The body must not synchronise with the host, and
   * what it allocates comes from the graph's private memory pool, at the same addresses every replay.
   * `warmup` runs first, for real, on the same thread and stream: cuBLAS and cuDNN create their
   * handles and workspaces per thread and stream on first use, which must not happen mid-capture.
   * On any error the capture is ended and discarded, and the error rethrown. Emulated, `body` is kept
   * and must stay callable as long as this graph.
   */
  void capture(c10::Device device, const std::function<void()>& warmup, const std::function<void()>& body);

  /** Runs the recorded kernels on the current stream of the capture's device. */
  void replay();

  bool captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip::runtime
