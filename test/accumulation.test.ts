// Contrastive accumulation (GradCache) and activation checkpointing against the computations they
// stand in for: one batch of accumulate × B in one step, and the same step with activations kept.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import { loadModel, type ClipModel } from '../src/model/model.js';
import { createTrainer, type TrainerOptions } from '../src/train/trainer.js';
import { fixture } from './helpers/fixtures.js';
import { randomizeBatchNorms } from './helpers/batch-norms.js';

type Name = 'tiny_vit' | 'tiny_rn';
interface Batch {
  images: { data: Float32Array; shape: number[] };
  tokens: { data: BigInt64Array; shape: number[] };
}

async function goldenBatch(name: Name): Promise<Batch> {
  const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
  return { images: g.float32('images'), tokens: g.tensor('text_tokens') as Batch['tokens'] };
}

/** Rows [from, from + count) of a batch. */
function rows(batch: Batch, from: number, count: number): Batch {
  const slice = <T extends Float32Array | BigInt64Array>(t: { data: T; shape: number[] }) => {
    const row = t.data.length / t.shape[0]!;
    return { data: t.data.slice(from * row, (from + count) * row) as T, shape: [count, ...t.shape.slice(1)] };
  };
  return { images: slice(batch.images), tokens: slice(batch.tokens) };
}

/** The batch twice over (8 rows), the second copy's images flipped left–right: distinct samples. */
function doubled(batch: Batch): Batch {
  const [n, c, h, w] = batch.images.shape as [number, number, number, number];
  const images = new Float32Array(batch.images.data.length * 2);
  images.set(batch.images.data);
  for (let i = 0; i < n * c * h; i++) {
    for (let x = 0; x < w; x++) images[batch.images.data.length + i * w + x] = batch.images.data[i * w + (w - 1 - x)]!;
  }
  const tokens = new BigInt64Array(batch.tokens.data.length * 2);
  tokens.set(batch.tokens.data);
  tokens.set(batch.tokens.data, batch.tokens.data.length);
  return { images: { data: images, shape: [2 * n, c, h, w] }, tokens: { data: tokens, shape: [2 * n, batch.tokens.shape[1]!] } };
}

async function model(name: Name): Promise<ClipModel> {
  const m = await loadModel(fixture('models', `${name}.safetensors`));
  if (name === 'tiny_rn') await randomizeBatchNorms(m);
  return m;
}

async function weights(m: ClipModel): Promise<Map<string, Float32Array>> {
  const entries = (await m.stateDict()).map((e) => [e.name, e.tensor.data] as const);
  // num_batches_tracked (int64) as float: a count, exact far beyond what these tests reach.
  return new Map(entries.map(([name, data]) => [name, data instanceof BigInt64Array ? Float32Array.from(data, Number) : Float32Array.from(data as Float32Array)]));
}

/** The largest |a − b| over every tensor, relative to the largest |b − start| (how far the step moved). */
function relativeDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>, start: Map<string, Float32Array>): number {
  let diff = 0;
  let moved = 0;
  for (const [name, x] of b) {
    const y = a.get(name)!;
    const s = start.get(name)!;
    x.forEach((v, i) => {
      diff = Math.max(diff, Math.abs(y[i]! - v));
      moved = Math.max(moved, Math.abs(v - s[i]!));
    });
  }
  return diff / moved;
}

function bitwiseEqual(a: Map<string, Float32Array>, b: Map<string, Float32Array>): string[] {
  const differing: string[] = [];
  for (const [name, x] of a) {
    const y = b.get(name)!;
    if (Buffer.compare(Buffer.from(x.buffer), Buffer.from(y.buffer)) !== 0) differing.push(name);
  }
  return differing;
}

// One SGD-like step: AdamW with eps ≫ |g| moves each weight by lr·g/eps, so the weights after it show
// the gradient itself, not Adam's sign-like normalisation of it (which would hide small differences).
const GRADIENT_STEP: TrainerOptions = { optimizer: 'adamw', lr: 1e4, eps: 1e4, weightDecay: 0, cudaGraph: false };

describe('contrastive accumulation (GradCache)', () => {
  for (const name of ['tiny_vit', 'tiny_rn'] as const) {
    test(`${name}: 4 micro-batches of 2 update as one batch of 8, and unlike 4 independent ones`, async () => {
      const batch = doubled(await goldenBatch(name));
      const labels = [0, 1, 2, 3, 1, 0, 3, 2];  // positives across micro-batches
      for (const withLabels of [false, true]) {
        const start = await weights(await model(name));
        const whole = await createTrainer(await model(name), GRADIENT_STEP);
        const wholeStep = await whole.stepWithInfo(batch.images, batch.tokens, withLabels ? labels : undefined);
        const cached = await createTrainer(await model(name), { ...GRADIENT_STEP, accumulate: 4 });
        const independent = await createTrainer(await model(name), { ...GRADIENT_STEP, accumulate: 4, accumulateMode: 'independent' });
        const results = [];
        for (let k = 0; k < 4; k++) {
          const micro = rows(batch, 2 * k, 2);
          const microLabels = withLabels ? labels.slice(2 * k, 2 * k + 2) : undefined;
          results.push(await cached.stepWithInfo(micro.images, micro.tokens, microLabels));
          await independent.step(micro.images, micro.tokens, microLabels);
        }
        assert.deepEqual(results.map((r) => [r.boundary, r.lossRead]), [[false, false], [false, false], [false, false], [true, true]]);
        const loss = results[3]!.loss;
        assert.ok(Math.abs(loss - wholeStep.loss) <= 1e-6 * Math.abs(wholeStep.loss), `group loss ${loss} vs one batch's ${wholeStep.loss}`);
        const exact = await weights(whole.model);
        const cachedError = relativeDifference(await weights(cached.model), exact, start);
        const independentError = relativeDifference(await weights(independent.model), exact, start);
        // fp32 rounding: the encoders run on 2 rows instead of 8 (other GEMM blockings), so features differ in the last bits.
        assert.ok(cachedError < 1e-4, `${name} labels=${withLabels}: contrastive accumulation is off one batch's update by ${cachedError}`);
        assert.ok(independentError > 1e-2, `${name} labels=${withLabels}: independent micro-batches must differ (${independentError}), or this test shows nothing`);
        const stats = await cached.stats();
        assert.equal(stats.lossCount, 1, 'one loss per group');
      }
    });
  }

  for (const lock of [{ lockText: true }, { lockImage: true }]) {
    test(`tiny_vit ${JSON.stringify(lock)}: a locked tower's features are not run again, and the update is still one batch's`, async () => {
      const batch = doubled(await goldenBatch('tiny_vit'));
      const start = await weights(await model('tiny_vit'));
      const whole = await createTrainer(await model('tiny_vit'), { ...GRADIENT_STEP, ...lock });
      await whole.step(batch.images, batch.tokens);
      const cached = await createTrainer(await model('tiny_vit'), { ...GRADIENT_STEP, ...lock, accumulate: 2 });
      for (const k of [0, 1]) {
        const micro = rows(batch, 4 * k, 4);
        await cached.step(micro.images, micro.tokens);
      }
      assert.ok(relativeDifference(await weights(cached.model), await weights(whole.model), start) < 1e-4);
    });
  }

  test('a micro-batch is kept as it was given: the caller may refill its buffers before the group ends', async () => {
    const batch = await goldenBatch('tiny_vit');
    const separate = await createTrainer(await model('tiny_vit'), { ...GRADIENT_STEP, accumulate: 2 });
    const reused = await createTrainer(await model('tiny_vit'), { ...GRADIENT_STEP, accumulate: 2 });
    const first = rows(batch, 0, 2);
    const second = rows(batch, 2, 2);
    await separate.step(first.images, first.tokens);
    await separate.step(second.images, second.tokens);
    // One pair of buffers for both micro-batches, as a loader that recycles its batch memory does.
    const buffer = rows(batch, 0, 2);
    await reused.step(buffer.images, buffer.tokens);
    buffer.images.data.set(second.images.data);
    buffer.tokens.data.set(second.tokens.data);
    await reused.step(buffer.images, buffer.tokens);
    assert.deepEqual(bitwiseEqual(await weights(reused.model), await weights(separate.model)), []);
  });

  test('an incomplete group at flush is one contrastive batch of what it holds', async () => {
    const batch = await goldenBatch('tiny_vit');
    const whole = await createTrainer(await model('tiny_vit'), GRADIENT_STEP);
    await whole.step(batch.images, batch.tokens);
    const cached = await createTrainer(await model('tiny_vit'), { ...GRADIENT_STEP, accumulate: 3 });
    for (const k of [0, 1]) {
      const micro = rows(batch, 2 * k, 2);
      assert.equal((await cached.stepWithInfo(micro.images, micro.tokens)).boundary, false);
    }
    assert.equal(cached.counters.pendingMicroBatches, 2);
    const flushed = await cached.flush();
    assert.equal(flushed.boundary, true);
    assert.equal(flushed.lossRead, true);
    const start = await weights(await model('tiny_vit'));
    assert.ok(relativeDifference(await weights(cached.model), await weights(whole.model), start) < 1e-4);
    assert.deepEqual(cached.counters, { optimizerSteps: 1, microSteps: 2, pendingMicroBatches: 0 });
  });

  test('train-mode BatchNorm: each micro-batch updates the running statistics once, as independent micro-batches do', async () => {
    const batch = doubled(await goldenBatch('tiny_rn'));
    const buffers = async (m: ClipModel) =>
      new Map([...(await weights(m))].filter(([n]) => n.includes('running_') || n.includes('num_batches_tracked')));
    const trained = [];
    for (const accumulateMode of ['contrastive', 'independent'] as const) {
      const t = await createTrainer(await model('tiny_rn'), { ...GRADIENT_STEP, accumulate: 4, accumulateMode, batchNorm: 'train' });
      for (let k = 0; k < 4; k++) {
        const micro = rows(batch, 2 * k, 2);
        await t.step(micro.images, micro.tokens);
      }
      trained.push(await buffers(t.model));
    }
    const before = await buffers(await model('tiny_rn'));
    assert.ok(before.size > 0);
    assert.ok(bitwiseEqual(trained[1]!, before).length > 0, 'train mode must move the statistics');
    assert.deepEqual(bitwiseEqual(trained[0]!, trained[1]!), []);
  });

  test('accumulateMode is validated', async () => {
    await assert.rejects(createTrainer(await model('tiny_vit'), { accumulate: 2, accumulateMode: 'sum' as never }), /accumulateMode/);
  });
});

describe('activation checkpointing', () => {
  const cases: Array<[Name, TrainerOptions]> = [
    ['tiny_vit', {}],
    ['tiny_rn', {}],
    ['tiny_rn', { batchNorm: 'train' }],
    // The first block's input takes no gradient: the blocks after it must get theirs all the same.
    ['tiny_vit', { freeze: ['^visual\\.(conv1|class_embedding|positional_embedding|ln_pre)', '^(token_embedding|positional_embedding)'] }],
    ['tiny_vit', { accumulate: 2 }],
    ['tiny_vit', { precision: 'bf16' }],
  ];
  for (const [name, options] of cases) {
    test(`${name} ${JSON.stringify(options)}: three steps equal the run without it, bit for bit (CPU)`, async () => {
      const batch = await goldenBatch(name);
      const runs = [];
      for (const gradCheckpointing of [false, true]) {
        const t = await createTrainer(await model(name), { lr: 1e-3, ...options, gradCheckpointing, cudaGraph: false });
        const losses = [];
        for (let i = 0; i < 3; i++) losses.push(await t.step(batch.images, batch.tokens));
        runs.push({ losses, weights: await weights(t.model) });
      }
      assert.deepEqual(runs[1]!.losses, runs[0]!.losses);
      assert.deepEqual(bitwiseEqual(runs[1]!.weights, runs[0]!.weights), []);
      if (options.freeze) {
        const trained = bitwiseEqual(runs[1]!.weights, await weights(await model(name)));
        assert.ok(trained.some((n) => n.startsWith('visual.transformer.resblocks.0.')), 'the vision block after the frozen input must have trained');
        assert.ok(trained.some((n) => n.startsWith('transformer.resblocks.0.')), 'the text block after the frozen input must have trained');
        assert.ok(!trained.includes('visual.conv1.weight'), 'a frozen weight must not move');
      }
    });
  }
});
