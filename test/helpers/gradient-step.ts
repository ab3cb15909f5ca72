// Gradients of two code paths held against fp32's. Paths that round differently under bf16/fp16 (own
// kernels, a folded BatchNorm) give training trajectories that drift apart the way bf16 drifts from
// fp32 (percents of the loss within ten steps on the tiny models), so steps cannot be compared one to
// one; their gradients at the same weights can. One AdamW step with eps ≫ |g| (and no weight decay,
// no clipping) moves each weight by lr·g/(|g| + eps) ≈ g for lr = eps: the step's delta is the
// gradient, read back through the state dict.
import assert from 'node:assert/strict';

import { readSafetensors } from '../../src/io/safetensors-header.js';
import { loadModel } from '../../src/model/model.js';
import type { Precision } from '../../src/model/model.js';
import { createTrainer } from '../../src/train/trainer.js';
import { randomizeBatchNorms } from './batch-norms.js';
import { fixture } from './fixtures.js';

export type Gradients = Map<string, Float32Array>;

const EPS = 1e4;

/**
 * Each trained tensor's gradient on the fixture batch (fp16: the first step its loss scale lets
 * through). tiny_rn's BatchNorms get statistics of their own (helpers/batch-norms.ts): the fixture's
 * are the identity, under which their fold into the convolutions is nearly the identity too.
 */
export async function gradientStep(name: 'tiny_vit' | 'tiny_rn', device: string, precision: Precision): Promise<Gradients> {
  const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
  const images = g.float32('images');
  const tokens = g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
  const model = await loadModel(fixture('models', `${name}.safetensors`), { device });
  if (name === 'tiny_rn') await randomizeBatchNorms(model);
  const before = await model.stateDict();
  const trainer = await createTrainer(model, { optimizer: 'adamw', lr: EPS, eps: EPS, weightDecay: 0, precision, batchNorm: 'frozen', cudaGraph: false });
  // A skipped step changes no weight and no optimizer state: the next one sees the same gradient.
  let tries = 0;
  while ((await trainer.stepWithInfo(images, tokens)).skipped) assert.ok(++tries < 8, `${name} ${precision}: every step skipped (non-finite gradients)`);
  const after = await model.stateDict();
  const gradients: Gradients = new Map();
  before.forEach(({ name: tensor, tensor: { data } }, i) => {
    const moved = after[i]!.tensor.data;
    if (!(data instanceof Float32Array) || !(moved instanceof Float32Array)) return;
    gradients.set(tensor, moved.map((v, j) => data[j]! - v));
  });
  return gradients;
}

export interface GradientError {
  /** ‖g − exact‖ / ‖exact‖ over all tensors together. */
  total: number;
  /** Per tensor, ‖g − exact‖ over ‖exact‖, or over a thousandth of the largest tensor's norm where a gradient is zero up to rounding. */
  perTensor: Map<string, number>;
}

export function gradientError(g: Gradients, exact: Gradients): GradientError {
  const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
  const floor = 1e-3 * Math.max(...[...exact.values()].map(norm));
  let diffSquares = 0;
  let exactSquares = 0;
  const perTensor = new Map<string, number>();
  for (const [name, x] of exact) {
    const mine = g.get(name);
    assert.ok(mine && mine.length === x.length, `${name}: missing or of another size`);
    const diff = norm(mine.map((v, j) => v - x[j]!));
    const size = norm(x);
    diffSquares += diff * diff;
    exactSquares += size * size;
    perTensor.set(name, diff / Math.max(size, floor));
  }
  return { total: Math.sqrt(diffSquares / exactSquares), perTensor };
}

/**
 * `mine` no further from fp32's gradients than `theirs` (another path's at the same precision), up to
 * rounding's chance: 1.25× overall and 2× per tensor, plus a little where both are exact to a few
 * ulps. A wrong term (a halved bias gradient, a lost residual) misses by tens of per cent.
 */
export function assertAsCloseAs(mine: GradientError, theirs: GradientError, what: string): void {
  assert.ok(mine.total <= 1.25 * theirs.total + 1e-3, `${what}: gradients ${fmt(mine.total)} from fp32's, the other path's ${fmt(theirs.total)}`);
  for (const [name, e] of mine.perTensor) {
    const other = theirs.perTensor.get(name)!;
    assert.ok(e <= 2 * other + 0.02, `${what}: ${name}'s gradient ${fmt(e)} from fp32's, the other path's ${fmt(other)}`);
  }
}

export const fmt = (share: number) => `${(100 * share).toFixed(2)} %`;
