import assert from 'node:assert/strict';

type Numeric = ArrayLike<number>;

/** torch.allclose semantics: |a - b| ≤ atol + rtol·|b| everywhere; the message names the worst element. */
export function assertAllClose(actual: Numeric, expected: Numeric, { rtol = 1e-4, atol = 1e-5, what = 'tensor' } = {}): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} elements, expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    const excess = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

/**
 * How far lower-precision logits moved from fp32: the largest |Δ|, the largest |fp32 logit|, and their
 * ratio (the bf16 bound of the tests and bench/gpu-parity.ts). Per-element ratios are not used: with
 * random weights many logits sit near zero, where any rounding is a large share of the value.
 */
export function logitDrift(lowered: Numeric, fp32: Numeric): { maxAbsDiff: number; maxAbsLogit: number; relative: number } {
  assert.equal(lowered.length, fp32.length);
  let diff = 0;
  let top = 0;
  for (let i = 0; i < fp32.length; i++) {
    diff = Math.max(diff, Math.abs(lowered[i]! - fp32[i]!));
    top = Math.max(top, Math.abs(fp32[i]!));
  }
  return { maxAbsDiff: diff, maxAbsLogit: top, relative: diff / top };
}

/** Mean and largest |a - b| over two equally long arrays (the preprocessing goldens' bounds). */
export function absDiffStats(a: Numeric, b: Numeric): { mean: number; max: number } {
  assert.equal(a.length, b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

/**
 * Batches a drift is averaged over: one batch's largest logit error is noisy (the variants of the tiny
 * models' batch spread from 0.5 to 3.7 %), and the bound is a ratio of two such means.
 */
export const DRIFT_VARIANTS = 32;

/**
 * Variant v (0 to DRIFT_VARIANTS − 1) of a batch, as test/python/autocast_ref.py builds them: the
 * [N, C, S, S] images' height and width transposed if v & 4, then rows flipped if v & 2 and columns if
 * v & 1, then rows rolled down by 7 · (v >> 3) (cyclically); each prompt token between the start and
 * the end token moved to (t + 131 v) mod (E − 1), E the batch's largest id (the end token, which stays
 * the largest), so that the texts differ too.
 */
export function batchVariant(
  images: { data: Float32Array; shape: number[] },
  tokens: { data: BigInt64Array; shape: number[] },
  v: number,
): { images: { data: Float32Array; shape: number[] }; tokens: { data: BigInt64Array; shape: number[] } } {
  const [n, c, h, w] = images.shape as [number, number, number, number];
  assert.equal(h, w, 'batch variants need square images');
  const turned = new Float32Array(images.data.length);
  const roll = (7 * (v >> 3)) % h;
  for (let plane = 0; plane < n * c; plane++) {
    const base = plane * h * w;
    for (let i = 0; i < h; i++) {
      const rolled = (i - roll + h) % h; // output row i holds the turned image's row i − roll
      const row = v & 2 ? h - 1 - rolled : rolled;
      for (let j = 0; j < w; j++) {
        const col = v & 1 ? w - 1 - j : j;
        turned[base + i * w + j] = images.data[base + (v & 4 ? col * w + row : row * w + col)]!;
      }
    }
  }
  const length = tokens.shape[1]!;
  const top = tokens.data.reduce((a, b) => (b > a ? b : a));
  const moved = tokens.data.slice();
  for (let i = 0; i < tokens.shape[0]!; i++) {
    const row = tokens.data.subarray(i * length, (i + 1) * length);
    const end = row.indexOf(row.reduce((a, b) => (b > a ? b : a))); // argmax: the first end token
    for (let j = 1; j < end; j++) moved[i * length + j] = (row[j]! + 131n * BigInt(v)) % (top - 1n);
  }
  return { images: { data: turned, shape: images.shape }, tokens: { data: moved, shape: tokens.shape } };
}

type Batch = { images: { data: Float32Array; shape: number[] }; tokens: { data: BigInt64Array; shape: number[] } };

/**
 * logitDrift's ratio for each variant of the batch (batchVariant), their mean, and each variant's
 * largest fp32 logit (which tells whether another implementation ran the same batches).
 */
export async function bf16DriftOverVariants(
  forward: (batch: Batch, precision: 'fp32' | 'bf16') => Promise<Numeric>,
  images: Batch['images'],
  tokens: Batch['tokens'],
): Promise<{ variants: number[]; mean: number; maxAbsLogits: number[] }> {
  const variants: number[] = [];
  const maxAbsLogits: number[] = [];
  for (let v = 0; v < DRIFT_VARIANTS; v++) {
    const batch = batchVariant(images, tokens, v);
    const drift = logitDrift(await forward(batch, 'bf16'), await forward(batch, 'fp32'));
    variants.push(drift.relative);
    maxAbsLogits.push(drift.maxAbsLogit);
  }
  return { variants, mean: variants.reduce((a, b) => a + b, 0) / variants.length, maxAbsLogits };
}
