#include "runtime/profile.h"

// CLIP_NATIVE_NO_PROFILER (e.g. CXXFLAGS=-DCLIP_NATIVE_NO_PROFILER) builds without it, should another
// LibTorch's profiler headers differ.
#ifndef CLIP_NATIVE_NO_PROFILER
#include <torch/csrc/autograd/profiler_kineto.h>
#endif

#include <algorithm>
#include <memory>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

namespace clip::runtime {

#ifdef CLIP_NATIVE_NO_PROFILER

std::vector<ProfileRow> profile(const std::function<void()>&, bool, const std::string&) {
  throw std::runtime_error("this build of clip-native has no profiler (built with CLIP_NATIVE_NO_PROFILER)");
}

#else

namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

std::vector<ProfileRow> profile(const std::function<void()>& work, bool cuda, const std::string& trace_path) {
  if (profiler::isProfilerEnabledInMainThread()) throw std::runtime_error("a profiler is already running in this process");
  // A written trace also records each operator's input shapes and strides, so that a copy kernel can
  // be traced to the layouts it converts between (bench/trace-kernels.ts).
  const ProfilerConfig config(ProfilerState::KINETO, /*report_input_shapes=*/!trace_path.empty());
  std::set<ActivityType> activities{ActivityType::CPU};
  if (cuda) activities.insert(ActivityType::CUDA);
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
  std::unique_ptr<profiler::ProfilerResult> result;
  try {
    work();
  } catch (...) {
    profiler::disableProfiler();
    throw;
  }
  result = profiler::disableProfiler();
  if (!trace_path.empty()) result->save(trace_path);

  std::map<std::pair<std::string, std::string>, ProfileRow> rows;
  for (const auto& event : result->events()) {
    const bool on_gpu = event.deviceType() == c10::DeviceType::CUDA;
    const std::string device = on_gpu ? "cuda" : "cpu";
    ProfileRow& row = rows[{device, event.name()}];
    row.name = event.name();
    row.device = device;
    row.calls += 1;
    row.total_us += static_cast<double>(event.durationNs()) / 1000.0;
  }
  std::vector<ProfileRow> out;
  out.reserve(rows.size());
  for (auto& [key, row] : rows) out.push_back(std::move(row));
  std::sort(out.begin(), out.end(), [](const ProfileRow& a, const ProfileRow& b) { return a.total_us > b.total_us; });
  return out;
}

#endif

}  // namespace clip::runtime
