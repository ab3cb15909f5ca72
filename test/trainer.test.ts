// The low-level trainer's options against independent computations: the multi-positive loss,
// freezing, accumulation, clipping, BatchNorm policy and precision checks.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import { loadModel, type ClipModel } from '../src/model/model.js';
import { normalize } from '../src/data/normalize.js';
import { learningRate } from '../src/train/schedule.js';
import { createTrainer } from '../src/train/trainer.js';
import { fixture } from './helpers/fixtures.js';

async function batch(name: string) {
  const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
  return { images: g.float32('images'), tokens: g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] } };
}

function logSoftmaxRow(row: number[]): number[] {
  const max = Math.max(...row);
  const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
  return row.map((v) => v - lse);
}

/** (CE(L, T) + CE(Lᵀ, T)) / 2 with soft targets T, in float64. */
function contrastiveLoss(logits: Float32Array, n: number, labels?: number[]): number {
  const rows = (transpose: boolean) =>
    Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => logits[transpose ? j * n + i : i * n + j]!));
  const target = (i: number, j: number) => {
    if (!labels) return i === j ? 1 : 0;
    const same = labels.filter((l) => l === labels[i]).length;
    return labels[i] === labels[j] ? 1 / same : 0;
  };
  const ce = (m: number[][]) => m.reduce((s, row, i) => s - logSoftmaxRow(row).reduce((a, lp, j) => a + target(i, j) * lp, 0), 0) / n;
  return (ce(rows(false)) + ce(rows(true))) / 2;
}

async function paramsByName(model: ClipModel) {
  return new Map((await model.stateDict()).map((e) => [e.name, Buffer.from(e.tensor.data.buffer as ArrayBuffer)]));
}

describe('trainer', () => {
  test('multi-positive targets: same-label pairs are positives; without labels they are negatives', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const labels = [0, 0, 1, 2];
    const reference = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const { logitsPerImage } = await reference.forward(images, tokens);
    const plain = contrastiveLoss(logitsPerImage.data, 4);
    const multi = contrastiveLoss(logitsPerImage.data, 4, labels);
    assert.ok(Math.abs(plain - multi) > 1e-3, 'the two targets must give different losses on this batch');

    const a = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { lr: 1e-3 });
    const b = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { lr: 1e-3 });
    const withoutLabels = await a.step(images, tokens);
    const withLabels = await b.step(images, tokens, labels);
    assert.ok(Math.abs(withoutLabels - plain) < 2e-5, `${withoutLabels} vs ${plain}`);
    assert.ok(Math.abs(withLabels - multi) < 2e-5, `${withLabels} vs ${multi}`);
    // After a few steps, the two same-label images are pulled together only with multi-positive targets.
    for (let i = 0; i < 5; i++) {
      await a.step(images, tokens);
      await b.step(images, tokens, Int32Array.from(labels));
    }
    const cosine01 = async (model: ClipModel) => {
      const f = (await model.encodeImage(images)).data;
      const d = f.length / 4;
      let dot = 0, n0 = 0, n1 = 0;
      for (let k = 0; k < d; k++) {
        dot += f[k]! * f[d + k]!;
        n0 += f[k]! ** 2;
        n1 += f[d + k]! ** 2;
      }
      return dot / Math.sqrt(n0 * n1);
    };
    a.model.eval();
    b.model.eval();
    assert.ok((await cosine01(b.model)) > (await cosine01(a.model)), 'same-label images end closer with multi-positive targets');
  });

  test('lockImage freezes the image tower, lockText the text tower, freeze patterns by name', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const cases = [
      { options: { lockImage: true }, frozen: (n: string) => n.startsWith('visual.') },
      { options: { lockText: true }, frozen: (n: string) => !n.startsWith('visual.') && n !== 'logit_scale' },
      { options: { freeze: ['^token_embedding\\.', 'ln_post'] }, frozen: (n: string) => n.startsWith('token_embedding.') || n.includes('ln_post') },
    ];
    for (const { options, frozen } of cases) {
      const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
      const before = await paramsByName(model);
      const trainer = await createTrainer(model, { lr: 1e-3, weightDecay: 0.01, ...options });
      await trainer.step(images, tokens);
      for (const [name, after] of await paramsByName(model)) {
        const changed = !after.equals(before.get(name)!);
        assert.equal(changed, !frozen(name), `${name} ${changed ? 'changed' : 'did not change'} with ${JSON.stringify(options)}`);
      }
    }
    await assert.rejects(
      createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { freeze: ['.*'] }),
      /every parameter is frozen/,
    );
  });

  test('accumulate (independent): one optimizer step per N micro-batches, the schedule counting optimizer steps', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const trainer = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), {
      lr: 1e-3,
      accumulate: 2,
      accumulateMode: 'independent',
      schedule: { kind: 'step', every: 1, gamma: 0.5 },
    });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await trainer.stepWithInfo(images, tokens));
    assert.deepEqual(results.map((r) => r.boundary), [false, true, false, true]);
    assert.deepEqual(results.map((r) => r.skipped), [false, false, false, false]);
    assert.deepEqual(results.map((r) => r.lr), [1e-3, 1e-3, 5e-4, 5e-4]);
    assert.deepEqual(trainer.counters, { optimizerSteps: 2, microSteps: 4, pendingMicroBatches: 0 });
    const stats = await trainer.stats();
    assert.equal(stats.skippedSteps, 0);
    assert.equal(stats.lossCount, 4);
    assert.ok(Math.abs(stats.lossSum - results.reduce((sum, r) => sum + r.loss, 0)) < 1e-4);
    await trainer.step(images, tokens);
    assert.equal(trainer.counters.pendingMicroBatches, 1);
    await assert.rejects(trainer.saveCheckpoint(path.join(os.tmpdir(), 'never.safetensors')), /lose their gradients/);
    const flushed = await trainer.flush();
    assert.equal(flushed.boundary, true);
    assert.deepEqual(trainer.counters, { optimizerSteps: 3, microSteps: 5, pendingMicroBatches: 0 });
    assert.equal((await trainer.flush()).boundary, false, 'nothing pending, nothing applied');
  });

  test('readLoss: false reads nothing back and trains exactly as a step that does', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const read = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { lr: 1e-3 });
    const deferred = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { lr: 1e-3 });
    let sum = 0;
    for (let i = 0; i < 3; i++) {
      sum += await read.step(images, tokens);
      const r = await deferred.stepWithInfo(images, tokens, undefined, { readLoss: false });
      assert.equal(r.lossRead, false);
      assert.ok(Number.isNaN(r.loss));
    }
    const [a, b] = [await read.model.stateDict(), await deferred.model.stateDict()];
    for (let i = 0; i < a.length; i++) assert.ok(Buffer.from(a[i]!.tensor.data.buffer).equals(Buffer.from(b[i]!.tensor.data.buffer)), a[i]!.name);
    const stats = await deferred.stats();
    assert.ok(Math.abs(stats.lossSum - sum) < 1e-4, `device loss sum ${stats.lossSum} vs ${sum}`);
    assert.equal(stats.lossCount, 3);
  });

  test('deferRead: takeRead gives each step its values, oldest first, as reading at once does; none waiting is an Error', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const options = { lr: 1e-3, gradClip: 1e-3, optimizer: 'adamw' } as const;
    const atOnce = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), options);
    const deferring = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), options);
    const poisoned = { data: images.data.slice(), shape: images.shape };
    poisoned.data[0] = Number.NaN;
    // The third batch's loss is not finite: its read says so, and counts the run.
    const batches = [images, images, poisoned, images];
    const expected = [];
    for (const b of batches) expected.push(await atOnce.stepWithInfo(b, tokens));
    for (const b of batches) {
      const r = await deferring.stepWithInfo(b, tokens, undefined, { deferRead: true });
      assert.deepEqual([r.readDeferred, r.lossRead, Number.isNaN(r.loss), r.boundary], [true, false, true, true]);
    }
    for (const want of expected) {
      const got = await deferring.takeRead();
      assert.equal(got.lossRead, true);
      assert.deepEqual([got.loss, got.skipped, got.gradNorm, got.nonFiniteRun], [want.loss, want.skipped, want.gradNorm, want.nonFiniteRun]);
    }
    assert.deepEqual(expected.map((r) => [r.skipped, r.nonFiniteRun]), [[false, 0], [false, 0], [true, 1], [false, 0]]);
    await assert.rejects(deferring.takeRead(), /takeRead\(\): no step has a deferred read waiting/);
  });

  test('a non-finite loss skips the update on the device and is counted', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const trainer = await createTrainer(model, { lr: 1e-3 });
    const poisoned = { data: images.data.slice(), shape: images.shape };
    poisoned.data[0] = Number.NaN;
    const before = await model.stateDict();
    const result = await trainer.stepWithInfo(poisoned, tokens);
    assert.ok(Number.isNaN(result.loss));
    assert.equal(result.skipped, true);
    const after = await model.stateDict();
    for (let i = 0; i < before.length; i++) {
      assert.ok(Buffer.from(before[i]!.tensor.data.buffer).equals(Buffer.from(after[i]!.tensor.data.buffer)), `${before[i]!.name} changed`);
    }
    assert.deepEqual(await trainer.stats(), { skippedSteps: 1, lossSum: 0, lossCount: 0, nonFiniteRun: 1 });
    await trainer.step(images, tokens);
    assert.equal((await trainer.stats()).nonFiniteRun, 0);
  });

  test('gradient clipping reports the pre-clip norm and bounds the update', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const trainer = await createTrainer(model, { lr: 1e-3, gradClip: 1e-3, optimizer: 'adamw' });
    const result = await trainer.stepWithInfo(images, tokens);
    assert.ok(Number.isFinite(result.gradNorm) && result.gradNorm > 1e-3, `gradNorm ${result.gradNorm}`);
    const unclipped = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { lr: 1e-3 });
    assert.ok(Number.isNaN((await unclipped.stepWithInfo(images, tokens)).gradNorm), 'no norm computed without clipping');
  });

  test('ResNet BatchNorm statistics stay frozen by default and update with batchNorm: train', async () => {
    const { images, tokens } = await batch('tiny_rn');
    for (const mode of ['frozen', 'train'] as const) {
      const model = await loadModel(fixture('models', 'tiny_rn.safetensors'));
      const before = await paramsByName(model);
      const trainer = await createTrainer(model, { lr: 1e-3, batchNorm: mode });
      await trainer.step(images, tokens);
      const after = await paramsByName(model);
      const stat = 'visual.bn1.running_mean';
      assert.equal(!after.get(stat)!.equals(before.get(stat)!), mode === 'train', `${stat} with batchNorm ${mode}`);
      assert.ok(!after.get('visual.bn1.weight')!.equals(before.get('visual.bn1.weight')!), 'affine BatchNorm weights still train');
    }
  });

  test('channels-last ResNet (the CUDA default) gives the same forward and training as contiguous', async () => {
    const { images, tokens } = await batch('tiny_rn');
    const golden = await readSafetensors(fixture('models', 'tiny_rn.golden.safetensors'));
    const nhwc = await loadModel(fixture('models', 'tiny_rn.safetensors'), { memoryFormat: 'channels_last' });
    const nchw = await loadModel(fixture('models', 'tiny_rn.safetensors'), { memoryFormat: 'contiguous' });
    nhwc.train();
    const features = await nhwc.encodeImage(images);
    const expected = golden.float32('train.image_features').data;
    for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(features.data[i]! - expected[i]!) <= 1e-5 + 1e-4 * Math.abs(expected[i]!), `feature ${i}`);
    // A train-mode forward updates BatchNorm statistics: give the contiguous model the same one.
    await nchw.train().encodeImage(images);
    const a = await createTrainer(nhwc, { lr: 1e-3, batchNorm: 'train' });
    const b = await createTrainer(nchw, { lr: 1e-3, batchNorm: 'train' });
    for (let i = 0; i < 2; i++) {
      const [la, lb] = [await a.step(images, tokens), await b.step(images, tokens)];
      assert.ok(Math.abs(la - lb) < 2e-5, `step ${i}: ${la} vs ${lb}`);
    }
    const [sa, sb] = [await nhwc.stateDict(), await nchw.stateDict()];
    for (let i = 0; i < sa.length; i++) {
      const [x, y] = [sa[i]!.tensor.data, sb[i]!.tensor.data];
      assert.deepEqual(sa[i]!.tensor.shape, sb[i]!.tensor.shape, sa[i]!.name);
      for (let k = 0; k < x.length; k += 97) assert.ok(Math.abs(Number(x[k]!) - Number(y[k]!)) <= 2e-4 + 1e-4 * Math.abs(Number(y[k]!)), `${sa[i]!.name}[${k}]: ${x[k]} vs ${y[k]}`);
    }
    await assert.rejects(loadModel(fixture('models', 'tiny_rn.safetensors'), { memoryFormat: 'nhwc' as 'auto' }), /memoryFormat/);
  });

  test('uint8 pixel batches [n, R, R, 3] are normalised natively, bitwise as the JS loader does', async () => {
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const r = model.config.image_resolution;
    const pixels = new Uint8Array(2 * r * r * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 256;
    const floats = new Float32Array(2 * 3 * r * r);
    for (let n = 0; n < 2; n++) {
      floats.set(normalize(pixels.subarray(n * r * r * 3, (n + 1) * r * r * 3)), n * 3 * r * r);
    }
    const { tokens } = await batch('tiny_vit');
    const two = { data: tokens.data.slice(0, 2 * 77), shape: [2, 77] };
    const a = await model.encodeImage({ data: pixels, shape: [2, r, r, 3] });
    const b = await model.encodeImage({ data: floats, shape: [2, 3, r, r] });
    assert.ok(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer)), 'encodeImage differs between uint8 and float input');
    const t1 = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { lr: 1e-3 });
    const t2 = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { lr: 1e-3 });
    assert.equal(await t1.step({ data: pixels, shape: [2, r, r, 3] }, two), await t2.step({ data: floats, shape: [2, 3, r, r] }, two));
    await assert.rejects(model.encodeImage({ data: pixels, shape: [2, 3, r, r] }), /uint8 images must be RGB pixels of shape \[n, 32, 32, 3\]/);
  });

  test('fp16 needs CUDA; bad options are refused with the option named', async () => {
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    await assert.rejects(createTrainer(model, { precision: 'fp16' }), /fp16 autocast needs a CUDA device/);
    await assert.rejects(createTrainer(model, { optimizer: 'sgd' as 'adam' }), /'optimizer' must be 'adam' or 'adamw'/);
    await assert.rejects(createTrainer(model, { schedule: { kind: 'step', every: 0, gamma: 0.1 } }), /schedule\.every/);
    await assert.rejects(createTrainer(model, { freeze: ['('] }), /not a valid regular expression/);
  });

  test('logit_scale is clamped to ln 100 after each step', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const state = await model.stateDict();
    const scale = state.find((e) => e.name === 'logit_scale')!;
    (scale.tensor.data as Float32Array)[0] = 10;
    await model.loadStateDict(state);
    const trainer = await createTrainer(model, { lr: 1e-6 });
    await trainer.step(images, tokens);
    const after = (await model.stateDict()).find((e) => e.name === 'logit_scale')!.tensor.data as Float32Array;
    assert.ok(Math.abs(after[0]! - Math.log(100)) < 1e-6, `logit_scale ${after[0]}`);
  });

  test('schedules are pure functions of the optimizer step', () => {
    assert.equal(learningRate({ kind: 'constant' }, 0.1, 1234), 0.1);
    assert.deepEqual([0, 9, 10, 19, 20].map((s) => learningRate({ kind: 'step', every: 10, gamma: 0.1 }, 1, s)), [1, 1, 0.1, 0.1, 0.1 * 0.1]);
    const cosine = { kind: 'cosine', warmup: 10, total: 110 } as const;
    assert.equal(learningRate(cosine, 1, 0), 0.1);
    assert.equal(learningRate(cosine, 1, 9), 1);
    assert.equal(learningRate(cosine, 1, 10), 1);
    assert.ok(Math.abs(learningRate(cosine, 1, 60) - 0.5) < 1e-12);
    assert.ok(learningRate(cosine, 1, 110) < 1e-12);
  });
  test('cudaGraph (on by default) on the CPU: reported off, and the steps are the eager steps bit for bit', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const options = { lr: 1e-3, schedule: { kind: 'step', every: 2, gamma: 0.5 } } as const;
    const plainModel = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const graphModel = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const plain = await createTrainer(plainModel, { ...options, cudaGraph: false });
    const graphed = await createTrainer(graphModel, options);
    assert.equal(plain.cudaGraphStatus, 'off');
    assert.equal(graphed.cudaGraphStatus, 'off: CUDA graphs need a CUDA device');
    for (let i = 0; i < 5; i++) assert.equal(await graphed.step(images, tokens, [0, 1, 0, 2]), await plain.step(images, tokens, [0, 1, 0, 2]));
    assert.deepEqual(await paramsByName(graphModel), await paramsByName(plainModel));
    // The bound on steps queued ahead of a device is a CUDA matter (test/cuda.test.ts): none here.
    assert.deepEqual(graphed.queuedSteps, { most: 0, limit: 3 });
  });
  test('profile(): real steps under the profiler, the time by operator (longest first), and a Chrome trace', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const trainer = await createTrainer(model, { lr: 1e-3 });
    const trace = path.join(os.tmpdir(), `clip-profile-${process.pid}.json`);
    try {
      const rows = await trainer.profile(images, tokens, { steps: 2, trace });
      assert.equal(trainer.optimizerSteps, 2, 'the profiled steps are real steps');
      assert.ok(rows.every((r, i) => r.device === 'cpu' && r.calls >= 1 && (i === 0 || rows[i - 1]!.totalUs >= r.totalUs)), 'sorted, CPU operators only');
      const names = new Set(rows.map((r) => r.name));
      for (const op of ['aten::mm', 'aten::_fused_adam_', 'aten::scaled_dot_product_attention']) assert.ok(names.has(op), `${op} among ${rows.length} operators`);
      assert.deepEqual([rows[0]!.name, rows[0]!.calls], ['clip_native::train_step', 2], 'each whole step is one row, the longest');
      assert.equal(rows.find((r) => r.name === 'aten::_fused_adam_')!.calls, 2, 'one fused Adam call per step');
      const chrome = JSON.parse(await fs.readFile(trace, 'utf8')) as { traceEvents: Array<{ name?: string }> };
      assert.ok(chrome.traceEvents.some((e) => e.name === 'aten::_fused_adam_'));
      await assert.rejects(trainer.profile(images, tokens, { steps: 0 }), /'steps' must be an integer from 1 to 1000/);
    } finally {
      await fs.rm(trace, { force: true });
    }
  });
});
