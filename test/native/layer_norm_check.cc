// The LayerNorm kernels of native/kernels/layer_norm_kernels.cuh, run on the CPU through
// cuda_emulation.h, against LayerNorm's forward and backward computed in double. Built and run by
// test/cuda-kernels-on-cpu.test.ts; prints one line per case and exits with the number that failed.
#include "cuda_emulation.h"
#include "kernels/layer_norm_kernels.cuh"

#include <cstdio>
#include <random>

using namespace clip::kernels;
using namespace clip::kernels::layer_norm;

template <typename T>
std::vector<float> as_float(const std::vector<T>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = Storage<T>::load(values[i]);
  return out;
}

// X: the input's (and its gradient's) storage, Y: the output's (and its gradient's), R: the residual's
// when `residual` (LayerNorm of s = x + r, whose backward adds the gradient s has from elsewhere).
// tol bounds the output's and the input gradient's error, relative, as the storage types round.
template <typename X, typename R, typename Y>
int check(int64_t rows, int cols, bool vector, double tol, bool residual = false) {
  std::mt19937 rng(rows * 131 + cols);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t n = rows * cols;
  std::vector<X> x(n), s(residual ? n : 0), ds(residual ? n : 0), dx(n);
  std::vector<R> r(residual ? n : 0), dr(residual ? n : 0);
  std::vector<Y> y(n), dy(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = Storage<X>::store(normal(rng) * 2.0f + 0.5f * (i % cols) / cols + 3.0f);
    dy[i] = Storage<Y>::store(normal(rng));
    if (residual) {
      r[i] = Storage<R>::store(normal(rng));
      ds[i] = Storage<X>::store(0.5f * normal(rng));
    }
  }
  std::vector<float> gamma(cols), beta(cols), mean(rows), rstd(rows);
  for (int c = 0; c < cols; ++c) {
    gamma[c] = 1.0f + 0.3f * normal(rng);
    beta[c] = 0.2f * normal(rng);
  }
  const EmuDim block{32, kRowsPerBlock, 1};
  const EmuDim rowsGrid{static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock), 1, 1};
  constexpr int V = kLanesOfPair<X, R> < kLanesOfPair<X, Y> ? kLanesOfPair<X, R> : kLanesOfPair<X, Y>;
  const float eps = 1e-5f;
  const R* rp = residual ? r.data() : nullptr;
  X* sp = residual ? s.data() : nullptr;
  const X* dsp = residual ? ds.data() : nullptr;
  R* drp = residual ? dr.data() : nullptr;
  if (vector) {
    emulate_launch(rowsGrid, block, forward<X, R, Y, V>, x.data(), rp, sp, gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols, eps);
  } else {
    emulate_launch(rowsGrid, block, forward<X, R, Y, 1>, x.data(), rp, sp, gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols, eps);
  }
  const X* normalised = residual ? s.data() : x.data();
  if (vector) {
    emulate_launch(rowsGrid, block, backward_input<X, R, Y, V>, dy.data(), normalised, mean.data(), rstd.data(), gamma.data(), dsp, dx.data(), drp, rows, cols);
  } else {
    emulate_launch(rowsGrid, block, backward_input<X, R, Y, 1>, dy.data(), normalised, mean.data(), rstd.data(), gamma.data(), dsp, dx.data(), drp, rows, cols);
  }
  const int64_t chunks = chunks_for(rows);
  std::vector<float> partial(2 * chunks * cols, -1e30f), dgamma(cols), dbeta(cols);
  emulate_launch(EmuDim{static_cast<unsigned>((cols + kColumnsPerTile - 1) / kColumnsPerTile), static_cast<unsigned>(chunks), 1}, block,
                 backward_parameters<X, Y>, dy.data(), normalised, mean.data(), rstd.data(), partial.data(), rows, cols);
  emulate_launch(EmuDim{static_cast<unsigned>((cols + 255) / 256), 1, 1}, EmuDim{256, 1, 1}, sum_chunks, partial.data(), dgamma.data(), dbeta.data(), chunks, cols);

  // The sum as the stream holds it: added in fp32, rounded to X — exactly what the kernel must write.
  std::vector<float> xf = as_float(x), dyf = as_float(dy), dsf = as_float(ds);
  int sum_mismatches = 0;
  if (residual) {
    const std::vector<float> rf = as_float(r);
    for (size_t i = 0; i < n; ++i) {
      const float expected = Storage<X>::load(Storage<X>::store(xf[i] + rf[i]));
      if (Storage<X>::load(s[i]) != expected) ++sum_mismatches;
      xf[i] = expected;
    }
  }
  // LayerNorm and its gradients in double, from the values as stored.
  double worst_y = 0, worst_dx = 0, worst_dr = 0, worst_dg = 0, worst_db = 0, worst_stat = 0;
  std::vector<double> dg(cols, 0.0), db(cols, 0.0);
  double scale_dx = 0, scale_dg = 0, scale_db = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const float* xr = &xf[row * cols];
    double m = 0;
    for (int c = 0; c < cols; ++c) m += xr[c];
    m /= cols;
    double v = 0;
    for (int c = 0; c < cols; ++c) v += (xr[c] - m) * (xr[c] - m);
    v /= cols;
    const double rs = 1.0 / std::sqrt(v + eps);
    worst_stat = std::max({worst_stat, std::abs(mean[row] - m) / (std::abs(m) + 1), std::abs(rstd[row] - rs) / rs});
    double sg = 0, sgx = 0;
    for (int c = 0; c < cols; ++c) {
      const double xh = (xr[c] - m) * rs;
      const double expected = xh * gamma[c] + beta[c];
      worst_y = std::max(worst_y, std::abs(Storage<Y>::load(y[row * cols + c]) - expected) / (std::abs(expected) + 1));
      const double g = dyf[row * cols + c] * gamma[c];
      sg += g;
      sgx += g * xh;
      dg[c] += dyf[row * cols + c] * xh;
      db[c] += dyf[row * cols + c];
    }
    for (int c = 0; c < cols; ++c) {
      const size_t i = row * cols + c;
      const double xh = (xr[c] - m) * rs;
      const double d = rs * (dyf[i] * gamma[c] - sg / cols - xh * sgx / cols) + (residual ? dsf[i] : 0.0);
      worst_dx = std::max(worst_dx, std::abs(Storage<X>::load(dx[i]) - d));
      if (residual) worst_dr = std::max(worst_dr, std::abs(Storage<R>::load(dr[i]) - d));
      scale_dx = std::max(scale_dx, std::abs(d));
    }
  }
  for (int c = 0; c < cols; ++c) {
    worst_dg = std::max(worst_dg, std::abs(dgamma[c] - dg[c]));
    scale_dg = std::max(scale_dg, std::abs(dg[c]));
    worst_db = std::max(worst_db, std::abs(dbeta[c] - db[c]));
    scale_db = std::max(scale_db, std::abs(db[c]));
  }
  const double edx = worst_dx / scale_dx, edr = worst_dr / scale_dx, edg = worst_dg / scale_dg, edb = worst_db / scale_db;
  // The branch's gradient is rounded to R: bf16/fp16 where X is fp32.
  const double tol_dr = sizeof(R) < sizeof(X) ? (std::is_same_v<R, __half> ? 2e-3 : 1e-2) : tol;
  const bool ok = sum_mismatches == 0 && worst_y < tol && edx < tol && edr < tol_dr && edg < 1e-4 && edb < 1e-4 && worst_stat < 1e-5;
  std::printf("%s %s→%-5s%s rows %5lld cols %4d %s: y %.2e stat %.2e dx %.2e dgamma %.2e dbeta %.2e", ok ? "ok  " : "FAIL", emu::type_name<X>(), emu::type_name<Y>(),
              residual ? (std::string(" + ") + emu::type_name<R>()).c_str() : "", (long long)rows, cols, vector ? "vector" : "scalar", worst_y, worst_stat, edx, edg,
              edb);
  if (residual) std::printf(" dr %.2e sums off %d", edr, sum_mismatches);
  std::printf("\n");
  return ok ? 0 : 1;
}

// Shapes that take both load widths, several row chunks and column tiles, and partial ones of each.
int main() {
  int failures = 0;
  failures += check<float, float, float>(600, 768, true, 1e-5);
  failures += check<float, float, float>(37, 100, true, 1e-5);
  failures += check<float, float, float>(513, 30, false, 1e-5);
  failures += check<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16>(600, 768, true, 1e-2);
  failures += check<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16>(75, 72, true, 1e-2);
  failures += check<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16>(300, 50, false, 1e-2);
  failures += check<__half, __half, __half>(9, 1280, true, 2e-3);
  failures += check<__half, __half, __half>(257, 66, false, 2e-3);
  // fp32 activations into a product under autocast: the output (and its gradient) in the half type.
  failures += check<float, float, __nv_bfloat16>(520, 512, true, 1e-2);
  failures += check<float, float, __nv_bfloat16>(33, 60, false, 1e-2);
  failures += check<float, float, __half>(70, 96, true, 2e-3);
  // The residual add joined: the vision stream (all bf16), the text stream (fp32 plus a bf16 branch).
  failures += check<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16>(300, 768, true, 1e-2, true);
  failures += check<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16>(41, 36, false, 1e-2, true);
  failures += check<float, __nv_bfloat16, __nv_bfloat16>(520, 512, true, 1e-2, true);
  failures += check<float, __half, __half>(77, 44, false, 2e-3, true);
  failures += check<float, float, float>(300, 128, true, 1e-5, true);
  return failures;
}
