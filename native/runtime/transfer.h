// Host tensors to a device. To a CUDA device they go from page-locked memory: an asynchronous copy
// from pageable memory makes the host wait for the device's queue (large copies pass through bounded
// staging buffers), which would serialise each call's launches with the work queued before it. The
// caching host allocator keeps a pinned block until the copy that reads it has completed.
#pragma once
#include <ATen/ATen.h>

namespace clip::runtime {

/** `host` through page-locked memory when it is a CPU tensor bound for a CUDA device; else itself. */
inline at::Tensor staged_for(const at::Tensor& host, at::Device device) {
  return device.is_cuda() && host.is_cpu() ? host.pin_memory() : host;
}

/** `host` on `device`, queued without blocking the host where the copy allows it. */
inline at::Tensor to_device(const at::Tensor& host, at::Device device) { return staged_for(host, device).to(device, /*non_blocking=*/true); }

}  // namespace clip::runtime
