// The bias + residual + ReLU kernel of native/kernels/bias_relu_kernels.cuh, run on the CPU through
// cuda_emulation.h, against the same fp32 arithmetic on the host: relu((x + b) + r) rounded once, NaN
// kept. Built and run by test/cuda-kernels-on-cpu.test.ts; prints one line per case and exits with the
// number that failed.
#include "cuda_emulation.h"
#include "kernels/bias_relu_kernels.cuh"

#include <cstdio>
#include <cstring>
#include <random>

using namespace clip::kernels;
using namespace clip::kernels::bias_relus;

template <typename T, int V, bool kResidual>
int check(int64_t rows, int cols, unsigned blocks) {
  std::mt19937 rng(rows * 31 + cols + V);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<T> x(rows * cols), r(rows * cols), y(rows * cols, Storage<T>::store(-7.0f));
  std::vector<float> bias(cols);
  for (auto& v : x) v = Storage<T>::store(normal(rng));
  for (auto& v : r) v = Storage<T>::store(normal(rng));
  for (auto& v : bias) v = 0.5f * normal(rng);
  x[3] = Storage<T>::store(NAN);  // relu keeps NaN, as PyTorch's does
  const int64_t groups = rows * cols / V;
  emulate_launch(EmuDim{blocks, 1, 1}, EmuDim{kThreads, 1, 1}, forward<T, V, kResidual>, x.data(), bias.data(), kResidual ? r.data() : nullptr, y.data(),
                 groups, cols);
  int64_t wrong = 0, positive = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    float v = Storage<T>::load(x[i]) + bias[i % cols];
    if (kResidual) v += Storage<T>::load(r[i]);
    const T expected = Storage<T>::store(std::isnan(v) ? v : std::max(v, 0.0f));
    if (std::memcmp(&expected, &y[i], sizeof(T)) != 0) ++wrong;
    if (v > 0) ++positive;
  }
  const bool ok = wrong == 0 && std::isnan(Storage<T>::load(y[3])) && positive > 0 && positive < rows * cols;
  std::printf("%s %-4s rows %5lld cols %4d %s%s, %u blocks: %lld of %lld values differ\n", ok ? "ok  " : "FAIL", emu::type_name<T>(), (long long)rows, cols,
              V > 1 ? "vector" : "scalar", kResidual ? " + residual" : "", blocks, (long long)wrong, (long long)(rows * cols));
  return ok ? 0 : 1;
}

// Both load widths, with and without the residual, a grid smaller than the work (threads stride).
int main() {
  int failures = 0;
  failures += check<__nv_bfloat16, 8, true>(50, 64, 2);
  failures += check<__nv_bfloat16, 8, false>(49, 128, 7);
  failures += check<__half, 8, true>(30, 24, 1);
  failures += check<__half, 1, false>(17, 5, 3);
  failures += check<float, 4, true>(40, 32, 2);
  failures += check<float, 1, true>(9, 7, 1);
  return failures;
}
