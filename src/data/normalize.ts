/** CLIP's Normalize constants (openai/CLIP `_transform`). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/**
 * ToTensor + Normalize on an HWC uint8 RGB crop, written as CHW float32 into `out` at `offset`.
 * Writing into a caller's buffer lets the loader fill a whole batch without extra copies.
 */
export function normalizeInto(hwc: Uint8Array, out: Float32Array, offset = 0): void {
  const pixels = hwc.length / 3;
  if (!Number.isInteger(pixels)) throw new RangeError(`an RGB crop needs a multiple of 3 bytes, got ${hwc.length}`);
  if (offset + 3 * pixels > out.length) throw new RangeError('normalizeInto: output too small');
  // Lookup tables: the same float32 arithmetic as torch, (x/255 - mean)/std, once per level.
  for (let c = 0; c < 3; c++) {
    const table = lookupTables[c]!;
    const base = offset + c * pixels;
    for (let i = 0, j = c; i < pixels; i++, j += 3) out[base + i] = table[hwc[j]!]!;
  }
}

/** Normalise an HWC uint8 RGB crop into a fresh CHW float32 array. */
export function normalize(hwc: Uint8Array): Float32Array {
  const out = new Float32Array(hwc.length);
  normalizeInto(hwc, out, 0);
  return out;
}

const lookupTables: Float32Array[] = [0, 1, 2].map((c) => {
  const table = new Float32Array(256);
  const mean = Math.fround(CLIP_MEAN[c]!);
  const std = Math.fround(CLIP_STD[c]!);
  for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(Math.fround(v / 255) - mean) / std);
  return table;
});
