// Data-parallel collectives through PyTorch's own c10d: ProcessGroupGloo on CPUs, ProcessGroupNCCL on
// CUDA, joined the way torchrun's launch contract describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT, the
// agent's TCPStore). Only process_group.cc sees c10d's headers, and only where the build found them
// (CMakeLists.txt / scripts/find-libtorch.mjs): elsewhere create_group() says what is missing.
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace clip::dist {

struct GroupOptions {
  std::string backend = "gloo";  // gloo | nccl
  int64_t rank = 0;
  int64_t world_size = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  // This rank starts the TCPStore server: rank 0 when no launcher agent hosts it (our own --nproc
  // spawn); under torchrun (TORCHELASTIC_USE_AGENT_STORE) every rank is a client.
  bool host_store = false;
  // Every wait (connecting, each collective) ends after this with an error naming what waited.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // Where the backend's collectives run: the CPU for gloo, this rank's GPU for nccl (which takes CUDA
  // tensors only). Tensors elsewhere (the training loop's host-side numbers) travel there and back.
  std::string device = "cpu";
};

/** The backends this build can create ("gloo", "nccl"). */
std::vector<std::string> built_backends();
/** Why a backend cannot be created by this build, with the fix; empty when it can. */
std::string missing_backend_reason(const std::string& backend);

/**
 * One process group. Every call is a collective (its tensors are changed in place): all ranks make the same calls in the same order,
 * each blocking until its result is there. Throws std::runtime_error naming the operation and the
 * group (e.g. when a peer died or the timeout passed).
 */
class Group {
 public:
  virtual ~Group() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  virtual const std::string& backend() const = 0;
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  virtual void all_reduce_max(std::vector<at::Tensor>& tensors) = 0;
  virtual void broadcast(std::vector<at::Tensor>& tensors, int64_t root) = 0;
  /** Every rank's `local` (same shape on all), concatenated along dim 0 in rank order. */
  virtual at::Tensor all_gather(const at::Tensor& local) = 0;
  virtual void barrier() = 0;
};

std::shared_ptr<Group> create_group(const GroupOptions& options);

}  // namespace clip::dist
