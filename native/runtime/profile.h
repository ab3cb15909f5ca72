// Where a piece of work spends its time, by LibTorch's Kineto profiler: on a CUDA device the GPU
// kernels (through CUPTI), on the CPU the operators. For the benchmarks: the numbers that say which
// kernels a faster train step has to fuse or remove.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace clip::runtime {

struct ProfileRow {
  std::string name;
  std::string device;  // "cuda" (a kernel or copy on the GPU) or "cpu" (an operator, time including its children)
  int64_t calls = 0;
  double total_us = 0;
};

/**
 * Runs `work` under the profiler (CPU activities, plus CUDA ones when `cuda`), and returns the events
 * grouped by name and device, the longest total first. With `trace_path`, also writes the Chrome trace
 * there. `work` must finish its device work before it returns (read a result back), or late kernels
 * are missed.
 */
std::vector<ProfileRow> profile(const std::function<void()>& work, bool cuda, const std::string& trace_path);

}  // namespace clip::runtime
