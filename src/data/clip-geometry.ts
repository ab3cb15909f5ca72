import type { ResizeMode } from '../model/config.js';

/**
 * The sizes torchvision computes in CLIP's `_transform` (Resize(R) then CenterCrop(R)), and in
 * open_clip's `image_transform` at eval for its other resize modes (cropGeometry).
 * Matching them exactly matters: a one-pixel crop shift alone breaks the golden tolerances.
 */

export type { ResizeMode };
export const RESIZE_MODES: readonly ResizeMode[] = ['shortest', 'longest', 'squash'];

/** Python's round(): halves go to the even neighbour (55.5 → 56, 54.5 → 54). */
export function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Resize(R): the shorter side becomes R, the longer `int(R * long / short)` (truncated). */
export function resizedSize(width: number, height: number, resolution: number): { width: number; height: number } {
  if (width <= 0 || height <= 0) throw new RangeError(`image size must be positive, got ${width}x${height}`);
  if (width <= height) return { width: resolution, height: Math.floor((resolution * height) / width) };
  return { width: Math.floor((resolution * width) / height), height: resolution };
}

/** CenterCrop(R) on a resized image: offsets use Python's round-half-to-even. */
export function centerCropOffsets(width: number, height: number, resolution: number): { left: number; top: number } {
  return {
    left: roundHalfToEven((width - resolution) / 2),
    top: roundHalfToEven((height - resolution) / 2),
  };
}

/**
 * open_clip's `ResizeKeepRatio(R, longest=1)`: both sides scaled by the longer side's ratio,
 * `ratio = max(h / R, w / R)`, each side `round(side / ratio)` (Python's round, in double).
 */
export function keepRatioSize(width: number, height: number, resolution: number): { width: number; height: number } {
  if (width <= 0 || height <= 0) throw new RangeError(`image size must be positive, got ${width}x${height}`);
  // open_clip: max(ratios) * longest + min(ratios) * (1 - longest); with longest = 1 the second term is +0.
  const ratio = Math.max(height / resolution, width / resolution);
  return { width: roundHalfToEven(width / ratio), height: roundHalfToEven(height / ratio) };
}

/** How one image becomes the R×R crop: resize the whole image, keep a window of it, place it on a black canvas. */
export interface CropGeometry {
  /** The size the whole image is resized to. */
  resized: { width: number; height: number };
  /** The part of the resized image that is kept, in its coordinates. */
  window: { left: number; top: number; width: number; height: number };
  /** Where the window's top-left corner lands in the R×R output; (0, 0) and an R×R window: no padding. */
  dest: { left: number; top: number };
}

/**
 * The geometry of open_clip's eval transform for `mode` (`image_transform(R, is_train=False, resize_mode=…)`):
 * - 'shortest' (OpenAI's): Resize(R), the shorter side to R, then CenterCrop(R);
 * - 'squash': Resize((R, R)), both sides to R, the aspect not kept, nothing cut;
 * - 'longest': ResizeKeepRatio(R, longest=1), the longer side to R, then CenterCropOrPad(R): the shorter
 *   side padded with zeros, (R - s) // 2 before and (R - s + 1) // 2 after (torchvision's CenterCrop rule).
 * Throws a RangeError where a side would become 0 pixels (Pillow refuses such a resize too).
 */
export function cropGeometry(width: number, height: number, resolution: number, mode: ResizeMode = 'shortest'): CropGeometry {
  let resized: { width: number; height: number };
  if (mode === 'shortest') resized = resizedSize(width, height, resolution);
  else if (mode === 'squash') resized = { width: resolution, height: resolution };
  else if (mode === 'longest') resized = keepRatioSize(width, height, resolution);
  else throw new RangeError(`resize mode must be one of ${RESIZE_MODES.join(', ')}, got '${String(mode)}'`);
  if (resized.width < 1 || resized.height < 1) {
    throw new RangeError(`a ${width}x${height} image resizes to ${resized.width}x${resized.height} in '${mode}' mode at ${resolution}`);
  }
  const x = centerCropOrPad(resized.width, resolution);
  const y = centerCropOrPad(resized.height, resolution);
  return {
    resized,
    window: { left: x.start, top: y.start, width: x.length, height: y.length },
    dest: { left: x.dest, top: y.dest },
  };
}

/**
 * torchvision's `center_crop` (and open_clip's `center_crop_or_pad`) along one side of `size` pixels:
 * pad to at least R, (R - size) // 2 before and (R - size + 1) // 2 after; unless that gives exactly R,
 * crop at `int(round((padded - R) / 2))`. Returns the kept source run and where it lands.
 */
function centerCropOrPad(size: number, resolution: number): { start: number; length: number; dest: number } {
  const before = resolution > size ? Math.floor((resolution - size) / 2) : 0;
  const after = resolution > size ? Math.floor((resolution - size + 1) / 2) : 0;
  const padded = size + before + after;
  // Both sides decide whether the crop is skipped, but a padded side is R long, and so crops at 0 anyway.
  const crop = padded === resolution ? 0 : roundHalfToEven((padded - resolution) / 2);
  // The crop [crop, crop + R) of the padded run, whose pixels [before, before + size) are the image's.
  const from = Math.max(crop, before);
  const to = Math.min(crop + resolution, before + size);
  return { start: from - before, length: to - from, dest: from - crop };
}
