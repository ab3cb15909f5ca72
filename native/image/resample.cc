// Pillow's Resample.c behaviour (Pillow 9.4 to 11.3 compute the same): `precompute_coeffs` with the
// bicubic filter (a = -0.5, support 2 × the scale when shrinking), weights normalised to sum 1 in
// double, then to fixed point with PRECISION_BITS = 32 - 8 - 2 rounding half away from zero; a
// horizontal pass into uint8 rows (only the rows the vertical pass reads), then a vertical pass; a
// pass is skipped when its side keeps its size. Sums are exact int32 arithmetic, so summing taps
// in another order (as the vectorised vertical pass does) gives Pillow's numbers.
#include "image/resample.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace clip::image {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);
constexpr double kBicubicSupport = 2.0;

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

inline uint8_t clip8(int32_t sum) {
  const int32_t v = sum >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

/** Per output position: the first source index, the tap count, and `ksize` fixed-point weights. */
struct Coeffs {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> k;
  int ksize = 0;
};

/** `precompute_coeffs` + `normalize_coeffs_8bpc` for output positions [from, from + n). */
Coeffs precompute(int in_size, int out_size, int from, int n) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kBicubicSupport * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(n);
  c.count.resize(n);
  c.k.assign(static_cast<size_t>(n) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  const double ss = 1.0 / filterscale;
  for (int i = 0; i < n; ++i) {
    const double center = (from + i + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);  // C's truncation, as Pillow's (int) cast
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    int32_t* k = &c.k[static_cast<size_t>(i) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      k[x] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first[i] = xmin;
    c.count[i] = xmax;
  }
  return c;
}

/** Horizontal pass over source rows [row0, row0 + rows), window columns only. */
template <int C>
void horizontal(const Pixels& src, const Coeffs& h, int row0, int rows, uint8_t* out) {
  const int out_w = static_cast<int>(h.first.size());
  for (int y = 0; y < rows; ++y) {
    const uint8_t* row = src.data + static_cast<size_t>(row0 + y) * src.width * C;
    uint8_t* o = out + static_cast<size_t>(y) * out_w * C;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &h.k[static_cast<size_t>(xx) * h.ksize];
      const uint8_t* s = row + static_cast<size_t>(h.first[xx]) * C;
      int32_t sum[C];
      for (int c = 0; c < C; ++c) sum[c] = kHalf;
      const int n = h.count[xx];
      for (int x = 0; x < n; ++x, s += C)
        for (int c = 0; c < C; ++c) sum[c] += s[c] * k[x];
      for (int c = 0; c < C; ++c) *o++ = clip8(sum[c]);
    }
  }
}

void horizontal_any(const Pixels& src, const Coeffs& h, int row0, int rows, uint8_t* out) {
  switch (src.channels) {
    case 1: return horizontal<1>(src, h, row0, rows, out);
    case 2: return horizontal<2>(src, h, row0, rows, out);
    case 3: return horizontal<3>(src, h, row0, rows, out);
    case 4: return horizontal<4>(src, h, row0, rows, out);
    default: throw std::invalid_argument("resample: 1 to 4 channels, got " + std::to_string(src.channels));
  }
}

/**
 * Vertical pass: `mid` holds rows [row0, …) of `stride` bytes; each output row is the weighted sum
 * of its taps' rows from byte `x0` on, `bytes` long. Taps outer, bytes inner: a loop compilers vectorise.
 */
void vertical(const uint8_t* mid, size_t stride, int row0, size_t x0, size_t bytes, const Coeffs& v, uint8_t* out) {
  std::vector<int32_t> sum(bytes);
  for (size_t yy = 0; yy < v.first.size(); ++yy) {
    std::fill(sum.begin(), sum.end(), kHalf);
    const int32_t* k = &v.k[yy * v.ksize];
    for (int y = 0; y < v.count[yy]; ++y) {
      const uint8_t* s = mid + static_cast<size_t>(v.first[yy] - row0 + y) * stride + x0;
      const int32_t w = k[y];
      int32_t* acc = sum.data();
      for (size_t i = 0; i < bytes; ++i) acc[i] += s[i] * w;
    }
    uint8_t* o = out + yy * bytes;
    for (size_t i = 0; i < bytes; ++i) o[i] = clip8(sum[i]);
  }
}

/** `rgbA2rgba` / `lA2la`: colour × alpha with Pillow's MULDIV255. */
std::vector<uint8_t> premultiply(const Pixels& src) {
  const int C = src.channels;
  const size_t n = static_cast<size_t>(src.width) * src.height * C;
  std::vector<uint8_t> out(n);
  for (size_t p = 0; p < n; p += C) {
    const int alpha = src.data[p + C - 1];
    for (int c = 0; c < C - 1; ++c) {
      const int tmp = src.data[p + c] * alpha + 128;
      out[p + c] = static_cast<uint8_t>(((tmp >> 8) + tmp) >> 8);
    }
    out[p + C - 1] = static_cast<uint8_t>(alpha);
  }
  return out;
}

/** `rgba2rgbA` / `la2lA`: alpha 0 or 255 unchanged, else CLIP8(255 · v / alpha), truncated. */
void unpremultiply(std::vector<uint8_t>& d, int C) {
  for (size_t p = 0; p < d.size(); p += C) {
    const int alpha = d[p + C - 1];
    if (alpha == 0 || alpha == 255) continue;
    for (int c = 0; c < C - 1; ++c) d[p + c] = static_cast<uint8_t>(std::min(255, 255 * d[p + c] / alpha));
  }
}

void check(const Pixels& src, int out_width, int out_height, const Window& win) {
  if (!src.data || src.width <= 0 || src.height <= 0 || src.channels < 1 || src.channels > 4)
    throw std::invalid_argument("resample: the source must be a non-empty image of 1 to 4 channels");
  if (!(out_width > 0 && out_height > 0 && win.left >= 0 && win.top >= 0 && win.width > 0 && win.height > 0 &&
        win.left + win.width <= out_width && win.top + win.height <= out_height))
    throw std::invalid_argument("resample: window " + std::to_string(win.width) + "x" + std::to_string(win.height) + "+" +
                                std::to_string(win.left) + "+" + std::to_string(win.top) + " is not inside " +
                                std::to_string(out_width) + "x" + std::to_string(out_height));
}

std::vector<uint8_t> resample_plain(const Pixels& src, int out_width, int out_height, const Window& win) {
  const int C = src.channels;
  const bool need_h = out_width != src.width;
  const bool need_v = out_height != src.height;
  Coeffs v;
  int row0 = win.top;
  int rows = win.height;
  if (need_v) {
    v = precompute(src.height, out_height, win.top, win.height);
    row0 = v.first.front();
    rows = v.first.back() + v.count.back() - row0;  // taps move forward with the output row
  }
  std::vector<uint8_t> mid;
  const uint8_t* rows_data;
  size_t stride;
  size_t x0;
  if (need_h) {
    const Coeffs h = precompute(src.width, out_width, win.left, win.width);
    mid.resize(static_cast<size_t>(rows) * win.width * C);
    horizontal_any(src, h, row0, rows, mid.data());
    rows_data = mid.data();
    stride = static_cast<size_t>(win.width) * C;
    x0 = 0;
  } else {
    rows_data = src.data + static_cast<size_t>(row0) * src.width * C;
    stride = static_cast<size_t>(src.width) * C;
    x0 = static_cast<size_t>(win.left) * C;
  }
  const size_t bytes = static_cast<size_t>(win.width) * C;
  std::vector<uint8_t> out(bytes * win.height);
  if (need_v) {
    vertical(rows_data, stride, row0, x0, bytes, v, out.data());
  } else {
    for (int y = 0; y < win.height; ++y) std::copy_n(rows_data + y * stride + x0, bytes, out.data() + y * bytes);
  }
  return out;
}

}  // namespace

std::vector<uint8_t> resample_bicubic(const Pixels& src, int out_width, int out_height, const Window& win, bool alpha_last) {
  check(src, out_width, out_height, win);
  const bool same = out_width == src.width && out_height == src.height;
  if (!alpha_last || same || src.channels < 2) return resample_plain(src, out_width, out_height, win);
  const std::vector<uint8_t> pre = premultiply(src);
  Pixels p = src;
  p.data = pre.data();
  std::vector<uint8_t> out = resample_plain(p, out_width, out_height, win);
  unpremultiply(out, src.channels);
  return out;
}

}  // namespace clip::image
