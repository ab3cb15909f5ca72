/**
 * The sizes torchvision computes in CLIP's `_transform` (Resize(R) then CenterCrop(R)).
 * Matching them exactly matters: a one-pixel crop shift alone breaks the golden tolerances.
 */

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
