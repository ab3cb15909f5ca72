// Runs CUDA kernels' device code on the CPU: one std::thread per CUDA thread, blocks one after another,
// __syncthreads as a block barrier and warp shuffles through per-warp slots. For checking kernels'
// logic on a machine without a GPU, not their speed.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <barrier>
#include <cmath>
#include <functional>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#undef __shared__
#define __shared__ static
#ifndef __global__
#define __global__
#endif
#ifndef __device__
#define __device__
#endif

struct EmuDim {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local EmuDim threadIdx, blockIdx;
inline EmuDim blockDim, gridDim;

namespace emu {
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline std::vector<float> warp_slots;
inline int linear_thread() { return static_cast<int>(threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y); }
}  // namespace emu

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
  const int t = emu::linear_thread();
  const int warp = t / 32, lane = t % 32;
  emu::warp_slots[t] = v;
  emu::warp_barriers[warp]->arrive_and_wait();
  const float other = emu::warp_slots[warp * 32 + (lane ^ lane_mask)];
  emu::warp_barriers[warp]->arrive_and_wait();
  return other;
}

inline float rsqrtf(float v) { return 1.0f / std::sqrt(v); }

template <typename Kernel, typename... Args>
void emulate_launch(EmuDim grid, EmuDim block, Kernel kernel, Args... args) {
  gridDim = grid;
  blockDim = block;
  const int threads = static_cast<int>(block.x * block.y * block.z);
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        emu::block_barrier = std::make_unique<std::barrier<>>(threads);
        emu::warp_barriers.clear();
        for (int w = 0; w < (threads + 31) / 32; ++w) emu::warp_barriers.push_back(std::make_unique<std::barrier<>>(std::min(32, threads - 32 * w)));
        emu::warp_slots.assign(static_cast<size_t>(threads), 0.0f);
        std::vector<std::thread> pool;
        for (unsigned tz = 0; tz < block.z; ++tz)
          for (unsigned ty = 0; ty < block.y; ++ty)
            for (unsigned tx = 0; tx < block.x; ++tx)
              pool.emplace_back([=] {
                threadIdx = {tx, ty, tz};
                blockIdx = {bx, by, bz};
                kernel(args...);
              });
        for (auto& t : pool) t.join();
      }
}

namespace emu {
/** "fp32", "fp16" or "bf16": the storage type's name in the check programs' report lines. */
template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, float>) return "fp32";
  else if constexpr (std::is_same_v<T, __half>) return "fp16";
  else return "bf16";
}
}  // namespace emu
