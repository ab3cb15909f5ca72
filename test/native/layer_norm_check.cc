// The LayerNorm kernels of native/kernels/layer_norm_kernels.cuh, run on the CPU through
// cuda_emulation.h, against LayerNorm's forward and backward computed in double. Built and run by
// test/cuda-kernels-on-cpu.test.ts; prints one line per case and exits with the number that failed.
#include "cuda_emulation.h"
#include "kernels/layer_norm_kernels.cuh"

#include <cstdio>
#include <random>
#include <type_traits>

using namespace clip::kernels;
using namespace clip::kernels::layer_norm;

template <typename T>
const char* name_of() {
  if constexpr (std::is_same_v<T, float>) return "fp32";
  else if constexpr (std::is_same_v<T, __half>) return "fp16";
  else return "bf16";
}

// X: the input's (and its gradient's) storage, Y: the output's (and its gradient's). tol bounds the
// output's and the input gradient's error, relative, as the storage types round.
template <typename X, typename Y>
int check(int64_t rows, int cols, bool vector, double tol) {
  std::mt19937 rng(rows * 131 + cols);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<X> x(rows * cols), dx(rows * cols);
  std::vector<Y> y(rows * cols), dy(rows * cols);
  std::vector<float> xf(rows * cols), dyf(rows * cols), gamma(cols), beta(cols), mean(rows), rstd(rows);
  for (int64_t i = 0; i < rows * cols; ++i) {
    x[i] = Storage<X>::store(normal(rng) * 2.0f + 0.5f * (i % cols) / cols + 3.0f);
    xf[i] = Storage<X>::load(x[i]);
    dy[i] = Storage<Y>::store(normal(rng));
    dyf[i] = Storage<Y>::load(dy[i]);
  }
  for (int c = 0; c < cols; ++c) { gamma[c] = 1.0f + 0.3f * normal(rng); beta[c] = 0.2f * normal(rng); }
  const EmuDim block{32, kRowsPerBlock, 1};
  const EmuDim rowsGrid{static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock), 1, 1};
  constexpr int V = kLanesOfPair<X, Y>;
  const float eps = 1e-5f;
  if (vector) emulate_launch(rowsGrid, block, forward<X, Y, V>, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols, eps);
  else emulate_launch(rowsGrid, block, forward<X, Y, 1>, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols, eps);
  if (vector) emulate_launch(rowsGrid, block, backward_input<X, Y, V>, dy.data(), x.data(), mean.data(), rstd.data(), gamma.data(), dx.data(), rows, cols);
  else emulate_launch(rowsGrid, block, backward_input<X, Y, 1>, dy.data(), x.data(), mean.data(), rstd.data(), gamma.data(), dx.data(), rows, cols);
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  std::vector<float> partial(2 * chunks * cols, -1e30f), dgamma(cols), dbeta(cols);
  emulate_launch(EmuDim{static_cast<unsigned>((cols + kColumnsPerTile - 1) / kColumnsPerTile), static_cast<unsigned>(chunks), 1}, block,
                 backward_parameters<X, Y>, dy.data(), x.data(), mean.data(), rstd.data(), partial.data(), rows, cols);
  emulate_launch(EmuDim{static_cast<unsigned>((cols + 255) / 256), 1, 1}, EmuDim{256, 1, 1}, sum_chunks, partial.data(), dgamma.data(), dbeta.data(), chunks, cols);

  // LayerNorm in double, from the values as stored.
  double worst_y = 0, worst_dx = 0, worst_dg = 0, worst_db = 0, worst_stat = 0;
  std::vector<double> dg(cols, 0.0), db(cols, 0.0);
  double scale_dx = 0, scale_dg = 0, scale_db = 0;
  std::vector<double> dxr(cols);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0; for (int c = 0; c < cols; ++c) m += xf[r * cols + c]; m /= cols;
    double v = 0; for (int c = 0; c < cols; ++c) v += (xf[r * cols + c] - m) * (xf[r * cols + c] - m); v /= cols;
    const double rs = 1.0 / std::sqrt(v + eps);
    worst_stat = std::max({worst_stat, std::abs(mean[r] - m) / (std::abs(m) + 1), std::abs(rstd[r] - rs) / rs});
    double sg = 0, sgx = 0;
    for (int c = 0; c < cols; ++c) {
      const double xh = (xf[r * cols + c] - m) * rs;
      const double yr = xh * gamma[c] + beta[c];
      worst_y = std::max(worst_y, std::abs(Storage<Y>::load(y[r * cols + c]) - yr) / (std::abs(yr) + 1));
      const double g = dyf[r * cols + c] * gamma[c];
      sg += g; sgx += g * xh;
      dg[c] += dyf[r * cols + c] * xh; db[c] += dyf[r * cols + c];
    }
    for (int c = 0; c < cols; ++c) {
      const double xh = (xf[r * cols + c] - m) * rs;
      const double d = rs * (dyf[r * cols + c] * gamma[c] - sg / cols - xh * sgx / cols);
      worst_dx = std::max(worst_dx, std::abs(Storage<X>::load(dx[r * cols + c]) - d));
      scale_dx = std::max(scale_dx, std::abs(d));
    }
  }
  for (int c = 0; c < cols; ++c) {
    worst_dg = std::max(worst_dg, std::abs(dgamma[c] - dg[c])); scale_dg = std::max(scale_dg, std::abs(dg[c]));
    worst_db = std::max(worst_db, std::abs(dbeta[c] - db[c])); scale_db = std::max(scale_db, std::abs(db[c]));
  }
  const double edx = worst_dx / scale_dx, edg = worst_dg / scale_dg, edb = worst_db / scale_db;
  const bool ok = worst_y < tol && edx < tol && edg < 1e-4 && edb < 1e-4 && worst_stat < 1e-5;
  std::printf("%s %s→%-5s rows %5lld cols %4d %s: y %.2e stat %.2e dx %.2e dgamma %.2e dbeta %.2e\n", ok ? "ok  " : "FAIL", name_of<X>(), name_of<Y>(),
              (long long)rows, cols, vector ? "vector" : "scalar", worst_y, worst_stat, edx, edg, edb);
  return ok ? 0 : 1;
}

// Shapes that take both load widths, several row chunks and column tiles, and partial ones of each.
int main() {
  int failures = 0;
  failures += check<float, float>(600, 768, true, 1e-5);
  failures += check<float, float>(37, 100, true, 1e-5);
  failures += check<float, float>(513, 30, false, 1e-5);
  failures += check<__nv_bfloat16, __nv_bfloat16>(600, 768, true, 1e-2);
  failures += check<__nv_bfloat16, __nv_bfloat16>(75, 72, true, 1e-2);
  failures += check<__nv_bfloat16, __nv_bfloat16>(300, 50, false, 1e-2);
  failures += check<__half, __half>(9, 1280, true, 2e-3);
  failures += check<__half, __half>(257, 66, false, 2e-3);
  // fp32 activations into a product under autocast: the output (and its gradient) in the half type.
  failures += check<float, __nv_bfloat16>(520, 512, true, 1e-2);
  failures += check<float, __nv_bfloat16>(33, 60, false, 1e-2);
  failures += check<float, __half>(70, 96, true, 2e-3);
  return failures;
}
