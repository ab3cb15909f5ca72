// The storage types the CUDA kernels of native/kernels/ take; plain C++, shared with their callers.
#pragma once

namespace clip::kernels {

enum class Dtype { kFloat, kHalf, kBFloat16 };

}  // namespace clip::kernels
