// One scripted training sequence, run with and without the CUDA graph of the step (for real on a GPU,
// emulated on a CPU): the two must agree. The schedule halves lr every 2 steps (a graph must read the
// current lr), each batch is another rotation of the fixture batch (a replay must read new inputs), the
// 6th is smaller (eager between replays), labels give multi-positive targets, and
// clipping and BatchNorm 'train' update state inside the graph.
import assert from 'node:assert/strict';

import { readSafetensors } from '../../src/io/safetensors-header.js';
import { loadModel } from '../../src/model/model.js';
import type { Precision } from '../../src/model/model.js';
import { createTrainer } from '../../src/train/trainer.js';
import { fixture } from './fixtures.js';
import { assertAllClose } from './tensors.js';

export const GRAPH_STEPS = 10;
const SMALL_STEP = 5;

export async function runScriptedSteps(name: 'tiny_vit' | 'tiny_rn', options: { device: string; precision: Precision; cudaGraph: boolean }) {
  const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
  const images = g.float32('images');
  const tokens = g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
  const n = images.shape[0]!;
  const labels = Array.from({ length: n }, (_, i) => i % 2);
  // Each step sees the batch rotated by its index (a replay must read the new inputs), or its first half.
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
      images: { data: rows(images.data, order), shape: [order.length, ...images.shape.slice(1)] },
      tokens: { data: rows(tokens.data, order), shape: [order.length, ...tokens.shape.slice(1)] },
      labels: order.map((row) => labels[row]!),
    };
  };
  const model = await loadModel(fixture('models', `${name}.safetensors`), { device: options.device });
  const trainer = await createTrainer(model, {
    optimizer: 'adamw', lr: 1e-3, weightDecay: 0.1, gradClip: 1, precision: options.precision, batchNorm: 'train',
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
  return { losses, statuses, stats: await trainer.stats(), state: await model.stateDict(), steps: trainer.optimizerSteps, trainer, model };
}

type Run = Awaited<ReturnType<typeof runScriptedSteps>>;

/** Graph and eager runs agree within rtol (0: bit for bit); returns the largest weight difference. */
export function assertRunsAgree(graphed: Run, eager: Run, rtol: number, what: string): number {
  assert.equal(graphed.steps, eager.steps);
  assert.deepEqual([graphed.stats.skippedSteps, graphed.stats.lossCount], [eager.stats.skippedSteps, eager.stats.lossCount]);
  const close = (a: number, b: number) => (rtol === 0 ? a === b : Math.abs(a - b) <= rtol * Math.abs(b) + 1e-6);
  assert.ok(close(graphed.stats.lossSum, eager.stats.lossSum), `${what}: loss sums ${graphed.stats.lossSum} vs ${eager.stats.lossSum}`);
  graphed.losses.forEach((loss, i) => assert.ok(close(loss, eager.losses[i]!), `${what}: step ${i} loss ${loss} vs ${eager.losses[i]}`));
  let worst = 0;
  eager.state.forEach(({ name, tensor }, i) => {
    const a = tensor.data;
    const b = graphed.state[i]!.tensor.data;
    if (!(a instanceof Float32Array) || !(b instanceof Float32Array)) return assert.deepEqual(b, a, `${what}: ${name}`);
    if (rtol === 0) assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${what}: ${name} differs`);
    else assertAllClose(b, a, { rtol, atol: 1e-6, what: `${what}: ${name}` });
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j]! - b[j]!));
  });
  return worst;
}
