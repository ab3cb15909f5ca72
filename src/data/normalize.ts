/** CLIP's Normalize constants (openai/CLIP `_transform`): the default when no model statistics are given. */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/**
 * ToTensor + Normalize on an HWC uint8 RGB crop, written as CHW float32 into `out` at `offset`, with
 * the model's `mean` and `std` (its `image_mean`/`image_std`; default OpenAI's).
 * Writing into a caller's buffer lets the loader fill a whole batch without extra copies.
 */
export function normalizeInto(
  hwc: Uint8Array,
  out: Float32Array,
  offset = 0,
  mean: ArrayLike<number> = CLIP_MEAN,
  std: ArrayLike<number> = CLIP_STD,
): void {
  const pixels = hwc.length / 3;
  if (!Number.isInteger(pixels)) throw new RangeError(`an RGB crop needs a multiple of 3 bytes, got ${hwc.length}`);
  if (offset + 3 * pixels > out.length) throw new RangeError('normalizeInto: output too small');
  const tables = lookupTables(mean, std);
  for (let c = 0; c < 3; c++) {
    const table = tables[c]!;
    const base = offset + c * pixels;
    for (let i = 0, j = c; i < pixels; i++, j += 3) out[base + i] = table[hwc[j]!]!;
  }
}

/** Normalise an HWC uint8 RGB crop into a fresh CHW float32 array (mean/std default OpenAI's). */
export function normalize(hwc: Uint8Array, mean: ArrayLike<number> = CLIP_MEAN, std: ArrayLike<number> = CLIP_STD): Float32Array {
  const out = new Float32Array(hwc.length);
  normalizeInto(hwc, out, 0, mean, std);
  return out;
}

/** Per channel, the 256 normalised levels of one (mean, std); few models, so never evicted. */
const tableCache = new Map<string, Float32Array[]>();

/**
 * Lookup tables: the same float32 arithmetic as torch, (x/255 - mean)/std with mean and std as float32
 * tensors (torchvision's Normalize; the native side's normalize_pixels), once per level. Each step is
 * rounded to float32 (Math.fround of a double operation on float32 operands is the float32 result).
 */
function lookupTables(mean: ArrayLike<number>, std: ArrayLike<number>): Float32Array[] {
  if (mean.length !== 3 || std.length !== 3) throw new RangeError(`mean and std need 3 values each, got ${mean.length} and ${std.length}`);
  const key = `${mean[0]},${mean[1]},${mean[2]}/${std[0]},${std[1]},${std[2]}`;
  let tables = tableCache.get(key);
  if (tables) return tables;
  for (let c = 0; c < 3; c++) {
    if (!Number.isFinite(mean[c]) || !Number.isFinite(std[c]) || !(std[c]! > 0)) {
      throw new RangeError(`mean must be 3 finite numbers and std 3 positive ones, got [${Array.from(mean)}] and [${Array.from(std)}]`);
    }
  }
  tables = [0, 1, 2].map((c) => {
    const table = new Float32Array(256);
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    return table;
  });
  tableCache.set(key, tables);
  return tables;
}
