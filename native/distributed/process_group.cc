#include "distributed/process_group.h"

#include <stdexcept>

#ifdef CLIP_NATIVE_WITH_C10D
// c10d's headers declare their process groups only under these; defined here, in the one file that
// includes them, so the rest of the addon (and its precompiled header) is built as before.
#define USE_DISTRIBUTED 1
#define USE_C10D_GLOO 1
#ifdef CLIP_NATIVE_WITH_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CLIP_NATIVE_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace clip::dist {

std::vector<std::string> built_backends() {
  std::vector<std::string> out;
#ifdef CLIP_NATIVE_WITH_C10D
  out.push_back("gloo");
#ifdef CLIP_NATIVE_WITH_NCCL
  out.push_back("nccl");
#endif
#endif
  return out;
}

std::string missing_backend_reason(const std::string& backend) {
  for (const auto& b : built_backends())
    if (b == backend) return "";
  if (backend == "gloo")
    return "this build of clip-native has no c10d: gloo's headers were not found when it was built (install them, e.g. "
           "`apt-get install libgloo-dev`, or set GLOO_INCLUDE_DIR; then `npm run build:native`)";
  if (backend == "nccl")
    return "this build of clip-native has no NCCL process group: it needs a LibTorch with CUDA and nccl.h at build time (the "
           "nvidia-nccl wheel that CUDA PyTorch depends on, or NCCL_INCLUDE_DIR); then `npm run build:native`";
  return "unknown backend '" + backend + "': use gloo (CPU) or nccl (CUDA)";
}

#ifdef CLIP_NATIVE_WITH_C10D
namespace {

class C10dGroup final : public Group {
 public:
  C10dGroup(const GroupOptions& options, c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::Backend> backend)
      : options_(options), device_(options.device), store_(std::move(store)), backend_(std::move(backend)) {}

  int64_t rank() const override { return options_.rank; }
  int64_t world_size() const override { return options_.world_size; }
  const std::string& backend() const override { return options_.backend; }

  void all_reduce_sum(std::vector<at::Tensor>& tensors) override { all_reduce(tensors, c10d::ReduceOp::SUM, "all-reduce (sum)"); }
  void all_reduce_max(std::vector<at::Tensor>& tensors) override { all_reduce(tensors, c10d::ReduceOp::MAX, "all-reduce (max)"); }

  void broadcast(std::vector<at::Tensor>& tensors, int64_t root) override {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = options_.timeout;
    // One tensor per call: c10d's multi-tensor form means one tensor per device, not a list.
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{on_device(t)};
      wait(backend_->broadcast(one, o), "broadcast");
      copy_back(t, one[0]);
    }
  }

  at::Tensor all_gather(const at::Tensor& local) override {
    const at::Tensor input = on_device(local).contiguous();
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int64_t r = 0; r < options_.world_size; ++r) outputs[0].push_back(at::empty_like(input));
    std::vector<at::Tensor> inputs{input};
    c10d::AllgatherOptions o;
    o.timeout = options_.timeout;
    wait(backend_->allgather(outputs, inputs, o), "all-gather");
    return at::cat(outputs[0], 0).to(local.device());
  }

  void barrier() override {
    c10d::BarrierOptions o;
    o.timeout = options_.timeout;
    wait(backend_->barrier(o), "barrier");
  }

 private:
  void all_reduce(std::vector<at::Tensor>& tensors, c10d::ReduceOp op, const char* what) {
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    o.timeout = options_.timeout;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{on_device(t)};
      wait(backend_->allreduce(one, o), what);
      copy_back(t, one[0]);
    }
  }

  at::Tensor on_device(const at::Tensor& t) const { return t.device() == device_ ? t : t.to(device_); }
  static void copy_back(at::Tensor& original, const at::Tensor& result) {
    if (!result.is_same(original)) original.copy_(result);
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      // On CUDA a wait only orders the current stream after the collective: a timeout here would block
      // the host until it ends (a synchronisation every step); NCCL's watchdog applies the group's
      // timeout instead. Gloo's collectives run on the host, so their wait takes the timeout.
      if (device_.is_cuda()) work->wait();
      else work->wait(options_.timeout);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(what) + " on rank " + std::to_string(options_.rank) + " of " + std::to_string(options_.world_size) +
                               " (" + options_.backend + ") failed: another rank may have stopped or timed out after " +
                               std::to_string(options_.timeout.count()) + " ms: " + e.what());
    }
  }

  GroupOptions options_;
  at::Device device_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
};

c10::intrusive_ptr<c10d::Store> connect_store(const GroupOptions& options) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(options.master_port);
  o.isServer = options.host_store;
  o.numWorkers = static_cast<int>(options.world_size);
  o.waitWorkers = false;
  o.timeout = options.timeout;
  // libtorch bundles its own libuv; the classic backend keeps it off the one Node's loop runs on.
  o.useLibUV = false;
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(options.master_addr, o);
    return c10::make_intrusive<c10d::PrefixStore>("clip-native", tcp);
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(options.rank) + " could not reach the rendezvous store at " + options.master_addr + ":" +
                             std::to_string(options.master_port) + " within " + std::to_string(options.timeout.count()) + " ms: " + e.what());
  }
}

c10::intrusive_ptr<c10d::Backend> make_backend(const GroupOptions& options, const c10::intrusive_ptr<c10d::Store>& store) {
  if (options.backend == "gloo") {
    auto o = c10d::ProcessGroupGloo::Options::create(options.timeout);
    o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(options.rank), static_cast<int>(options.world_size), o);
  }
#ifdef CLIP_NATIVE_WITH_NCCL
  if (options.backend == "nccl") {
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = options.timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, static_cast<int>(options.rank), static_cast<int>(options.world_size), o);
  }
#endif
  throw std::runtime_error(missing_backend_reason(options.backend));
}

}  // namespace
#endif

std::shared_ptr<Group> create_group(const GroupOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size)
    throw std::invalid_argument("rank " + std::to_string(options.rank) + " is not in a world of size " + std::to_string(options.world_size));
  if (const std::string why = missing_backend_reason(options.backend); !why.empty()) throw std::runtime_error(why);
#ifdef CLIP_NATIVE_WITH_C10D
  auto store = connect_store(options);
  return std::make_shared<C10dGroup>(options, store, make_backend(options, store));
#else
  throw std::logic_error("unreachable");
#endif
}

}  // namespace clip::dist
