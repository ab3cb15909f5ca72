// One scripted training sequence, run with and without the CUDA graph of the step (for real on a GPU,
// emulated on a CPU): the two must agree. The schedule halves lr every 2 steps (a graph must read the
// current lr). Every batch differs from the last in each input, so a replay that reads a stale buffer
// changes the loss: the rows rotate (a contrastive loss does not see a rotation of whole pairs, but
// rotated tokens against stale images, or rotated pairs against stale labels, make other pairs), the
// images brighten step by step, and the labels are not symmetric under rotation. The 6th batch is
// smaller (eager between replays); clipping and BatchNorm 'train' update state inside the graph.
import assert from 'node:assert/strict';

import { readSafetensors } from '../../src/io/safetensors-header.js';
import { loadModel } from '../../src/model/model.js';
import type { Precision } from '../../src/model/model.js';
import { createTrainer } from '../../src/train/trainer.js';
import { fixture } from './fixtures.js';

export const GRAPH_STEPS = 10;
const LR = 1e-3;
const SMALL_STEP = 5;

export async function runScriptedSteps(name: 'tiny_vit' | 'tiny_rn', options: { device: string; precision: Precision; cudaGraph: boolean }) {
  const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
  const images = g.float32('images');
  const tokens = g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
  const n = images.shape[0]!;
  // [0, 0, 1, 2, …]: one same-label pair, which a rotation moves to other rows.
  const labels = Array.from({ length: n }, (_, i) => Math.max(0, i - 1));
  const rows = <T extends Float32Array | BigInt64Array>(data: T, order: number[]): T => {
    const width = data.length / n;
    const out = data.slice(0, order.length * width) as T;
    // Both kinds of array copy rows alike; TypeScript cannot type set() over their union.
    order.forEach((row, i) => (out as Float32Array).set((data as Float32Array).subarray(row * width, (row + 1) * width), i * width));
    return out;
  };
  const batchAt = (step: number) => {
    const order = Array.from({ length: step === SMALL_STEP ? Math.max(1, n >> 1) : n }, (_, i) => (i + step) % n);
    return {
      images: { data: rows(images.data, order).map((v) => v + 0.05 * step), shape: [order.length, ...images.shape.slice(1)] },
      tokens: { data: rows(tokens.data, order), shape: [order.length, ...tokens.shape.slice(1)] },
      labels: order.map((row) => labels[row]!),
    };
  };
  const model = await loadModel(fixture('models', `${name}.safetensors`), { device: options.device });
  const initial = await model.stateDict();
  const trainer = await createTrainer(model, {
    optimizer: 'adamw', lr: LR, weightDecay: 0.1, gradClip: 1, precision: options.precision, batchNorm: 'train',
    schedule: { kind: 'step', every: 2, gamma: 0.5 }, cudaGraph: options.cudaGraph,
  });
  const losses: number[] = [];
  const statuses: string[] = [];
  for (let i = 0; i < GRAPH_STEPS; i++) {
    const batch = batchAt(i);
    const r = await trainer.stepWithInfo(batch.images, batch.tokens, batch.labels);
    losses.push(r.loss);
    statuses.push(trainer.cudaGraphStatus);
  }
  return { losses, statuses, stats: await trainer.stats(), initial, state: await model.stateDict(), steps: trainer.optimizerSteps, trainer, model };
}

type Run = Awaited<ReturnType<typeof runScriptedSteps>>;

/**
 * How close a graph run must come to the eager one: bit for bit (the CPU emulation replays the very same
 * operations), or on a GPU, where eager runs differ among themselves (atomics in attention backward,
 * cuBLAS algorithms picked per stream), within `lossRtol` on each loss and, per tensor, within
 * `updateShare` of how far training moved it, or of one step's lr where it moved less: an AdamW step
 * moves a weight by about lr whatever the gradient's size, except where the gradient is zero up to
 * rounding (attention's key bias: softmax ignores a shift shared by all keys), and there rounding
 * alone decides where the weight ends (tiny_rn's attnpool.k_proj.bias moved by 5e-7 on an H200, and
 * two runs differed by 31 % of that). A graph reading stale inputs or a stale lr misses by about the
 * whole update. Losses agree within `lossRtol` of the eager loss plus `lossAtol`: a loss near zero
 * (tiny_rn fp32's 6th step, 0.0394 on an H100) keeps the rounding of the terms it was summed from, so
 * a relative bound alone would ask more of it than of the others (it missed 1e-5 by 1.9e-6 absolute);
 * a stale input moves a loss by 1e-2 or more.
 */
export type Agreement = { bitwise: true } | { lossRtol: number; lossAtol: number; updateShare: number };

/** Returns the largest share of a tensor's update by which the runs differ. */
export function assertRunsAgree(graphed: Run, eager: Run, agreement: Agreement, what: string): number {
  assert.equal(graphed.steps, eager.steps);
  assert.deepEqual([graphed.stats.skippedSteps, graphed.stats.lossCount], [eager.stats.skippedSteps, eager.stats.lossCount]);
  const bitwise = 'bitwise' in agreement;
  const close = (a: number, b: number) => (bitwise ? a === b : Math.abs(a - b) <= agreement.lossRtol * Math.abs(b) + agreement.lossAtol);
  assert.ok(close(graphed.stats.lossSum, eager.stats.lossSum), `${what}: loss sums ${graphed.stats.lossSum} vs ${eager.stats.lossSum}`);
  graphed.losses.forEach((loss, i) => assert.ok(close(loss, eager.losses[i]!), `${what}: step ${i} loss ${loss} vs ${eager.losses[i]}`));
  let worstShare = 0;
  eager.state.forEach(({ name, tensor }, i) => {
    const a = tensor.data;
    const b = graphed.state[i]!.tensor.data;
    const start = eager.initial[i]!.tensor.data;
    if (!(a instanceof Float32Array) || !(b instanceof Float32Array) || !(start instanceof Float32Array)) return assert.deepEqual(b, a, `${what}: ${name}`);
    if (bitwise) {
      assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${what}: ${name} differs`);
      return;
    }
    let diff = 0;
    let update = 0;
    for (let j = 0; j < a.length; j++) {
      diff = Math.max(diff, Math.abs(a[j]! - b[j]!));
      update = Math.max(update, Math.abs(a[j]! - start[j]!));
    }
    if (update === 0) return assert.equal(diff, 0, `${what}: ${name} was not trained in the eager run but moved in the graph run`);
    const scale = Math.max(update, LR);
    worstShare = Math.max(worstShare, diff / scale);
    assert.ok(diff <= agreement.updateShare * scale, `${what}: ${name} differs by ${diff}, ${((100 * diff) / scale).toFixed(2)} % of its update ${update} (or lr ${LR})`);
  });
  return worstShare;
}
