// Pillow's Image.resize(size, BICUBIC) for 8-bit images, reproduced to the bit: what openai/CLIP's
// and open_clip's preprocessing (torchvision Resize on a PIL image) does to every training image.
// Plain C++ without LibTorch, so the decode path pays nothing for the model's headers.
#pragma once
#include <cstdint>
#include <vector>

namespace clip::image {

/** The part of the resized image to produce (a centre crop): only its pixels are computed. */
struct Window {
  int left = 0;
  int top = 0;
  int width = 0;
  int height = 0;
};

/** Interleaved 8-bit pixels, row-major. */
struct Pixels {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int channels = 0;
};

/**
 * `Image.resize((out_width, out_height), Image.BICUBIC)` cropped to `win`, channels resampled
 * independently. With `alpha_last`, the last channel is alpha and the colour is premultiplied in
 * uint8 before and divided out after (Pillow's RGBA → RGBa → RGBA, LA → La → LA), except when the
 * size does not change, where Pillow returns a copy. Throws std::invalid_argument on bad geometry.
 */
std::vector<uint8_t> resample_bicubic(const Pixels& src, int out_width, int out_height, const Window& win, bool alpha_last);

}  // namespace clip::image
