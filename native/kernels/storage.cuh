// Loads and stores of fp32 / fp16 / bf16 storage as fp32 values, for the kernels of native/kernels/:
// they all compute in fp32 whatever the tensor's type. Device code only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

namespace clip::kernels {

template <typename T>
struct Storage;
template <>
struct Storage<float> {
  __device__ static float load(float v) { return v; }
  __device__ static float store(float v) { return v; }
};
template <>
struct Storage<__half> {
  __device__ static float load(__half v) { return __half2float(v); }
  __device__ static __half store(float v) { return __float2half_rn(v); }
};
template <>
struct Storage<__nv_bfloat16> {
  __device__ static float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

/** Values of T in one 16-byte load: the width that approaches memory bandwidth. */
template <typename T>
constexpr int kLanesOf16Bytes = static_cast<int>(sizeof(uint4) / sizeof(T));

/** Values per load where two storage types are read side by side: 16 bytes of the wider one. */
template <typename A, typename B>
constexpr int kLanesOfPair = kLanesOf16Bytes<A> < kLanesOf16Bytes<B> ? kLanesOf16Bytes<A> : kLanesOf16Bytes<B>;

// One load or store of Bytes bytes, for the vector widths load_values/store_values use.
template <int Bytes>
struct Raw {
  using type = void;
};
template <>
struct Raw<16> {
  using type = uint4;
};
template <>
struct Raw<8> {
  using type = uint2;
};

/** V consecutive values at p as fp32: one 16- or 8-byte load when V fills it (p then aligned to it). */
template <typename T, int V>
__device__ inline void load_values(const T* p, float (&out)[V]) {
  using Word = typename Raw<V * sizeof(T)>::type;
  if constexpr (!std::is_void_v<Word>) {
    const Word raw = *reinterpret_cast<const Word*>(p);
    const T* items = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = Storage<T>::load(items[j]);
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = Storage<T>::load(p[j]);
  }
}

/** Stores V fp32 values at p as T, in one 16- or 8-byte store when V fills it. */
template <typename T, int V>
__device__ inline void store_values(T* p, const float (&in)[V]) {
  using Word = typename Raw<V * sizeof(T)>::type;
  if constexpr (!std::is_void_v<Word>) {
    Word raw;
    T* items = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int j = 0; j < V; ++j) items[j] = Storage<T>::store(in[j]);
    *reinterpret_cast<Word*>(p) = raw;
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) p[j] = Storage<T>::store(in[j]);
  }
}

/** Whether every pointer is 16-byte aligned, so that rows of a multiple of V values load as vectors. */
inline bool aligned_16(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers) {
    if (reinterpret_cast<std::uintptr_t>(p) % sizeof(uint4) != 0) return false;
  }
  return true;
}

}  // namespace clip::kernels
