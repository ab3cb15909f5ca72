// The column-sum kernels of native/kernels/column_sum_kernels.cuh (a product's bias gradient), run on
// the CPU through cuda_emulation.h, against sums in double. Built and run by
// test/cuda-kernels-on-cpu.test.ts; prints one line per case and exits with the number that failed.
#include "cuda_emulation.h"
#include "kernels/column_sum_kernels.cuh"

#include <cstdio>
#include <random>

using namespace clip::kernels;
using namespace clip::kernels::column_sums;

// T: the matrix's storage, O: the sums'. tol bounds the error relative to the largest |sum|, as O rounds.
template <typename T, typename O>
int check(int64_t rows, int cols, bool vector, double tol) {
  std::mt19937 rng(rows * 7 + cols);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<T> x(rows * cols);
  for (auto& v : x) v = Storage<T>::store(normal(rng) + 0.1f);
  const int64_t chunks = chunks_for(rows);
  std::vector<float> partial(chunks * cols, -1e30f);
  std::vector<O> out(cols);
  constexpr int V = kLanesOf16Bytes<T>;
  const EmuDim block{kWarp, kWarps, 1};
  if (vector) {
    emulate_launch(EmuDim{static_cast<unsigned>((cols / V + kWarp - 1) / kWarp), static_cast<unsigned>(chunks), 1}, block, partial_sums<T, V>, x.data(),
                   partial.data(), rows, cols);
  } else {
    emulate_launch(EmuDim{static_cast<unsigned>((cols + kWarp - 1) / kWarp), static_cast<unsigned>(chunks), 1}, block, partial_sums<T, 1>, x.data(),
                   partial.data(), rows, cols);
  }
  emulate_launch(EmuDim{static_cast<unsigned>((cols + 255) / 256), 1, 1}, EmuDim{256, 1, 1}, sum_chunks<O>, partial.data(), out.data(), chunks, cols);
  double worst = 0, scale = 0;
  for (int c = 0; c < cols; ++c) {
    double expected = 0;
    for (int64_t r = 0; r < rows; ++r) expected += Storage<T>::load(x[r * cols + c]);
    worst = std::max(worst, std::abs(Storage<O>::load(out[c]) - expected));
    scale = std::max(scale, std::abs(expected));
  }
  const bool ok = worst / scale < tol;
  std::printf("%s %s→%-5s rows %5lld cols %4d %s: %.2e of the largest sum\n", ok ? "ok  " : "FAIL", emu::type_name<T>(), emu::type_name<O>(), (long long)rows, cols,
              vector ? "vector" : "scalar", worst / scale);
  return ok ? 0 : 1;
}

// Several row chunks, whole and partial column tiles, both load widths.
int main() {
  int failures = 0;
  failures += check<__nv_bfloat16, __nv_bfloat16>(600, 2304, true, 1e-2);
  failures += check<__nv_bfloat16, float>(600, 2304, true, 1e-5);
  failures += check<__nv_bfloat16, float>(257, 50, false, 1e-5);
  failures += check<float, float>(513, 100, true, 1e-5);
  failures += check<float, float>(40, 30, false, 1e-5);
  failures += check<__half, __half>(300, 264, true, 2e-3);
  failures += check<__half, float>(9, 1000, true, 1e-5);
  return failures;
}
