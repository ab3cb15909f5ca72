// Precision modes. Weights stay fp32 (master weights); bf16/fp16 come from autocast, which LibTorch
// C++ exposes only as thread-local switches, wrapped here in a scope guard.
#pragma once
#include <ATen/autocast_mode.h>

#include <optional>
#include <stdexcept>
#include <string>

namespace clip::model {

enum class Precision { kFp32, kBf16, kFp16 };

inline Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp16") return Precision::kFp16;
  throw std::invalid_argument("precision must be fp32, bf16 or fp16, got '" + name + "'");
}

inline const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    default: return "fp32";
  }
}

/** Enables autocast on `device` for the guard's lifetime (no-op for fp32). */
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, Precision precision) : device_(device), active_(precision != Precision::kFp32) {
    if (!active_) return;
    previous_enabled_ = at::autocast::is_autocast_enabled(device_);
    previous_dtype_ = at::autocast::get_autocast_dtype(device_);
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, precision == Precision::kBf16 ? at::kBFloat16 : at::kHalf);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!active_) return;
    // Leaving the outermost autocast region frees its cache of casted weights.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_, previous_enabled_);
    at::autocast::set_autocast_dtype(device_, previous_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool active_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace clip::model
