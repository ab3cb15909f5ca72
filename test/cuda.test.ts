// The CUDA paths, run where a GPU is visible (the GPU machine: `node --test dist/test/cuda.test.js`,
// run by bench/gpu.sh). On machines without one every test here is skipped, saying so.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import { createModel, loadModel } from '../src/model/model.js';
import { cudaMemory, runtimeInfo } from '../src/native.js';
import { createTrainer } from '../src/train/trainer.js';
import { fixture } from './helpers/fixtures.js';
import { assertParametersMatchAdam3, readAdam3 } from './helpers/adam3.js';
import { autocastReference } from './helpers/autocast-reference.js';
import { randomizeBatchNorms } from './helpers/batch-norms.js';
import { withExperiments } from './helpers/experiments.js';
import { assertAsCloseAs, fmt, gradientError, gradientStep } from './helpers/gradient-step.js';
import { assertRunsAgree, runScriptedSteps } from './helpers/graph-steps.js';
import { assertAllClose, bf16DriftOverVariants, DRIFT_VARIANTS, logitDrift } from './helpers/tensors.js';

const cuda = runtimeInfo().cudaAvailable;
const SKIP = `SKIPPED: no CUDA device visible to this build of the addon (${runtimeInfo().builtWithCuda ? 'built with CUDA' : 'CPU-only LibTorch'}); run on the GPU machine`;

async function goldenBatch(name: string) {
  const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
  return { g, images: g.float32('images'), tokens: g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] } };
}


describe('CUDA', () => {
  // openai/CLIP's own drift under CUDA bf16 autocast, from the machine's PyTorch (asked once).
  const reference = cuda ? autocastReference('cuda') : undefined;
  for (const name of ['tiny_vit', 'tiny_rn']) {
    test(`${name}: fp32 on CUDA matches the reference goldens (rtol 1e-4, atol 1e-5)`, async (t) => {
      if (!cuda) return t.skip(SKIP);
      const { g, images, tokens } = await goldenBatch(name);
      const model = await loadModel(fixture('models', `${name}.safetensors`), { device: 'cuda' });
      const prefix = name === 'tiny_rn' ? 'train.' : '';
      if (prefix) model.train();
      assertAllClose((await model.encodeImage(images)).data, g.float32(`${prefix}image_features`).data, { what: `${name} image features` });
      assertAllClose((await model.encodeText(tokens)).data, g.float32(`${prefix}text_features`).data, { what: `${name} text features` });
      const { logitsPerImage } = await model.forward(images, tokens);
      assertAllClose(logitsPerImage.data, g.float32(`${prefix}logits_per_image`).data, { what: `${name} logits` });
    });

    test(`${name}: bf16 autocast on CUDA stays close to fp32`, async (t) => {
      if (!cuda) return t.skip(SKIP);
      const { images, tokens } = await goldenBatch(name);
      const model = await loadModel(fixture('models', `${name}.safetensors`), { device: 'cuda' });
      const fp32 = (await model.forward(images, tokens, { precision: 'fp32' })).logitsPerImage.data;
      const bf16 = (await model.forward(images, tokens, { precision: 'bf16' })).logitsPerImage.data;
      // Issue 4 asks for 1 %; the reference's own bf16 autocast moves these random-weight logits by
      // 2.0–2.3 % on the CPU (model-api test), so the bound is the reference's drift on this device,
      // as a mean over DRIFT_VARIANTS variants of the batch (one batch's largest error is noisy).
      const drift = logitDrift(bf16, fp32).relative;
      t.diagnostic(`${name}: bf16 logits differ from fp32 by at most ${(drift * 100).toFixed(2)} % of the largest logit (issue target 1 %)`);
      assert.ok(drift < 0.03, `bf16 drift ${drift}`);
      const { drift: theirs, skip } = await reference!;
      if (!theirs) return t.skip(`reference comparison skipped: ${skip}`);
      const forward = async (batch: { images: typeof images; tokens: typeof tokens }, precision: 'fp32' | 'bf16') =>
        (await model.forward(batch.images, batch.tokens, { precision })).logitsPerImage.data;
      const mine = await bf16DriftOverVariants(forward, images, tokens);
      const ref = theirs[name]!;
      assertAllClose(mine.maxAbsLogits, ref.max_abs_variants, { what: `${name}: each variant's largest fp32 logit, ours vs the reference's` });
      const percents = (shares: number[]) => shares.map((v) => (100 * v).toFixed(2)).join(' ');
      t.diagnostic(`${name}: mean over ${DRIFT_VARIANTS} batch variants ${(100 * mine.mean).toFixed(2)} % (${percents(mine.variants)})`);
      t.diagnostic(`${name}: openai/CLIP under CUDA bf16 autocast (torch ${ref.torch}): ${(100 * ref.mean_relative).toFixed(2)} % (${percents(ref.variants)})`);
      assert.ok(mine.mean <= Math.max(0.01, 1.25 * ref.mean_relative), `mean bf16 drift ${mine.mean}: worse than the reference's ${ref.mean_relative}`);
    });
  }

  test('the same Adam steps on CPU and CUDA in fp32 agree on the loss within 1e-4 relative', async (t) => {
    if (!cuda) return t.skip(SKIP);
    const { images, tokens } = await goldenBatch('tiny_vit');
    const reference = await readSafetensors(fixture('models', 'tiny_vit.adam3.safetensors'));
    const trainer = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors'), { device: 'cuda' }), {
      lr: 1e-3, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.001,
    });
    const expected = reference.float32('losses').data;
    for (let i = 0; i < 3; i++) {
      const loss = await trainer.step(images, tokens);
      assert.ok(Math.abs(loss - expected[i]!) <= 1e-4 * Math.abs(expected[i]!), `step ${i}: ${loss} vs ${expected[i]}`);
    }
  });

  test('uint8 pixels are normalised on the GPU exactly as on the CPU', async (t) => {
    if (!cuda) return t.skip(SKIP);
    const r = 32;
    const pixels = { data: new Uint8Array(2 * r * r * 3).map((_, i) => (i * 7919) % 256), shape: [2, r, r, 3] };
    const onCpu = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const onGpu = await loadModel(fixture('models', 'tiny_vit.safetensors'), { device: 'cuda' });
    assertAllClose((await onGpu.encodeImage(pixels)).data, (await onCpu.encodeImage(pixels)).data, { what: 'features from uint8 pixels' });
  });

  for (const precision of ['bf16', 'fp16'] as const) {
    for (const name of ['tiny_vit', 'tiny_rn']) {
      test(`${name}: ${precision} training on CUDA keeps finite losses and reads nothing back between logs`, async (t) => {
        if (!cuda) return t.skip(SKIP);
        const { images, tokens } = await goldenBatch(name);
        const trainer = await createTrainer(await loadModel(fixture('models', `${name}.safetensors`), { device: 'cuda' }), {
          optimizer: 'adamw', lr: 1e-4, weightDecay: 0.1, precision,
        });
        let last = Number.NaN;
        for (let i = 0; i < 20; i++) {
          const r = await trainer.stepWithInfo(images, tokens, undefined, { readLoss: i % 5 === 4 });
          assert.equal(r.lossRead, i % 5 === 4);
          if (r.lossRead) {
            assert.ok(Number.isFinite(r.loss), `step ${i}: loss ${r.loss}`);
            if (precision === 'fp16') assert.ok(r.lossScale > 0, 'fp16 reports its loss scale');
            last = r.loss;
          }
        }
        const stats = await trainer.stats();
        t.diagnostic(`${name} ${precision}: last loss ${last}, ${stats.skippedSteps} skipped of 20`);
        assert.equal(stats.lossCount, 20);
        assert.ok(stats.skippedSteps <= (precision === 'fp16' ? 3 : 0), `${stats.skippedSteps} skipped steps`);
      });
    }
  }

  // Issue 20: open_clip's GELU models and head counts other than width / 64 on CUDA. GELU takes none of
  // QuickGELU's own forms (the fused silu MLP, the kernel); an equal fp32 forward on both devices and
  // a graphed bf16 run whose losses stay finite say it runs the same model.
  test('a GELU model with 6 vision and 3 text heads: fp32 on CUDA equals the CPU, bf16 trains under the CUDA graph', async (t) => {
    if (!cuda) return t.skip(SKIP);
    const config = {
      embed_dim: 32, image_resolution: 32, vision_layers: 2, vision_width: 96, vision_patch_size: 8, vision_heads: 6, vision_mlp_width: 200,
      context_length: 77, vocab_size: 49408, transformer_width: 48, transformer_heads: 3, transformer_layers: 2, transformer_mlp_width: 100,
      activation: 'gelu' as const,
    };
    const { images, tokens } = await goldenBatch('tiny_vit');
    const onCpu = await createModel(config, { seed: 3 });
    const onGpu = await createModel(config, { seed: 3, device: 'cuda' });
    assertAllClose((await onGpu.forward(images, tokens)).logitsPerImage.data, (await onCpu.forward(images, tokens)).logitsPerImage.data, { what: 'GELU model logits, CUDA vs CPU' });
    const trainer = await createTrainer(onGpu, { optimizer: 'adamw', lr: 1e-4, precision: 'bf16', cudaGraph: true });
    let loss = Number.NaN;
    for (let i = 0; i < 8; i++) loss = await trainer.step(images, tokens);
    t.diagnostic(`GELU model: loss ${loss} after 8 bf16 steps; CUDA graph: ${trainer.cudaGraphStatus}`);
    assert.ok(Number.isFinite(loss));
    assert.equal(trainer.cudaGraphStatus, 'captured');
  });

  // Issue 23: activation checkpointing recomputes each block with the forward's kernels (the own
  // kernels, bf16, flat weights), so its steps equal the plain ones; on CUDA within rounding only, as
  // some backward kernels accumulate with atomics, whose order varies run to run (the bound: the
  // graph-vs-eager steps' own, helpers/graph-steps.ts, which face the same effect).
  for (const name of ['tiny_vit', 'tiny_rn'] as const) {
    test(`${name}: bf16 steps with activation checkpointing equal the plain ones, eager and under the CUDA graph`, async (t) => {
      if (!cuda) return t.skip(SKIP);
      const { images, tokens } = await goldenBatch(name);
      const run = async (gradCheckpointing: boolean, cudaGraph: boolean) => {
        const model = await loadModel(fixture('models', `${name}.safetensors`), { device: 'cuda' });
        if (name === 'tiny_rn') await randomizeBatchNorms(model);
        const trainer = await createTrainer(model, { optimizer: 'adamw', lr: 1e-4, precision: 'bf16', gradCheckpointing, cudaGraph });
        const losses: number[] = [];
        for (let i = 0; i < 6; i++) losses.push(await trainer.step(images, tokens));
        return { losses, graph: trainer.cudaGraphStatus };
      };
      for (const cudaGraph of [false, true]) {
        const plain = await run(false, cudaGraph);
        const checkpointed = await run(true, cudaGraph);
        if (cudaGraph) assert.equal(checkpointed.graph, 'captured', 'checkpointing must not keep the step out of the graph');
        checkpointed.losses.forEach((loss, i) => {
          const relative = Math.abs(loss - plain.losses[i]!) / Math.abs(plain.losses[i]!);
          assert.ok(relative < 1e-3, `${name} graph=${cudaGraph} step ${i + 1}: ${loss} vs ${plain.losses[i]} (relative ${fmt(relative)})`);
        });
      }
    });
  }

  // Nothing read back between logs, so only the trainer's own bound keeps the host from queuing steps
  // (each holding its batch's pinned staging memory) far ahead of the device (native/train/trainer.h).
  // Reads deferred as the training loop defers them (src/train/loop.ts): each taken after the next step.
  test('graphed steps that read nothing back queue at most the limit on the device; deferred reads come back in order', async (t) => {
    if (!cuda) return t.skip(SKIP);
    const { images, tokens } = await goldenBatch('tiny_vit');
    const trainer = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors'), { device: 'cuda' }), {
      optimizer: 'adamw', lr: 1e-4, precision: 'bf16', cudaGraph: true,
    });
    const losses: number[] = [];
    let waiting = 0;
    for (let i = 0; i < 40; i++) {
      const r = await trainer.stepWithInfo(images, tokens, undefined, { readLoss: i % 5 === 4, deferRead: true });
      if (r.readDeferred) waiting++;
      for (; waiting > (r.readDeferred ? 1 : 0); waiting--) losses.push((await trainer.takeRead()).loss);
    }
    for (; waiting > 0; waiting--) losses.push((await trainer.takeRead()).loss);
    assert.equal(losses.length, 8);
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    const { most, limit } = trainer.queuedSteps;
    t.diagnostic(`at most ${most} steps queued at once (limit ${limit}); graph ${trainer.cudaGraphStatus}`);
    assert.equal(trainer.cudaGraphStatus, 'captured');
    assert.ok(most >= 1 && most <= limit, `${most} steps queued at once, limit ${limit}`);
    assert.equal((await trainer.stats()).lossCount, 40);
  });

  // The CUDA graph replays the eager step's kernels, so the two runs agree (test/helpers/graph-steps.ts
  // scripts them; test/cuda-graph-emulated.test.ts runs the same script on the CPU).
  for (const name of ['tiny_vit', 'tiny_rn'] as const) {
    for (const precision of ['fp32', 'bf16', 'fp16'] as const) {
      test(`${name} ${precision}: the CUDA-graph step gives the eager step's losses and weights`, async (t) => {
        if (!cuda) return t.skip(SKIP);
        const eager = await runScriptedSteps(name, { device: 'cuda', precision, cudaGraph: false });
        const graphed = await runScriptedSteps(name, { device: 'cuda', precision, cudaGraph: true });
        assert.equal(graphed.statuses.at(-1), 'captured');
        // Eager GPU runs differ among themselves: cuDNN's convolution weight gradients and attention's
        // backward accumulate with atomics (tiny_rn fp32 moved a weight by 0.11 % of its update on the
        // H200), and under bf16/fp16 such a difference can flip a rounding. A replay that reads a stale
        // batch or lr misses by about the whole update.
        const agreement = precision === 'fp32' ? { lossRtol: 1e-5, lossAtol: 1e-5, updateShare: 1e-2 } : { lossRtol: 5e-3, lossAtol: 1e-5, updateShare: 5e-2 };
        const worst = assertRunsAgree(graphed, eager, agreement, `${name} ${precision}`);
        t.diagnostic(`${name} ${precision}: graph vs eager differ by at most ${(100 * worst).toFixed(3)} % of a tensor's update; losses ${graphed.losses.map((l) => l.toFixed(5)).join(' ')}`);
      });
    }
  }

  // The product weights cast at once (native/train/flat_weights.h, the default) against autocast's own
  // per-product casts (experiment per-op-casts), both with the CUDA graph: the same numbers up to the
  // GPU's run-to-run differences (the CPU test, test/flat-weights.test.ts, asks for bit equality).
  for (const name of ['tiny_vit', 'tiny_rn'] as const) {
    for (const precision of ['bf16', 'fp16'] as const) {
      test(`${name} ${precision}: weights cast at once train as autocast's per-product casts do`, async (t) => {
        if (!cuda) return t.skip(SKIP);
        const perOp = await withExperiments('per-op-casts', () => runScriptedSteps(name, { device: 'cuda', precision, cudaGraph: true }));
        const atOnce = await runScriptedSteps(name, { device: 'cuda', precision, cudaGraph: true });
        assert.equal(atOnce.statuses.at(-1), 'captured');
        const worst = assertRunsAgree(atOnce, perOp, { lossRtol: 5e-3, lossAtol: 1e-5, updateShare: 5e-2 }, `${name} ${precision} casts at once`);
        t.diagnostic(`${name} ${precision}: casts at once vs per product differ by at most ${(100 * worst).toFixed(3)} % of a tensor's update`);
      });
    }
  }

  // The paths CUDA takes by default where ATen's were measured slower (LayerNorm by own kernels with
  // the residual add joined, the products' own backward, frozen BatchNorm folded into the convolution,
  // the ResNet's pools as means) round differently under bf16/fp16: their gradients must be as close
  // to fp32's as those of the paths they replaced, each lever off in turn and all together
  // (test/helpers/gradient-step.ts). Trajectories are no measure: they drift apart as bf16 drifts
  // from fp32.
  for (const name of ['tiny_vit', 'tiny_rn'] as const) {
    for (const precision of ['bf16', 'fp16'] as const) {
      test(`${name} ${precision}: the default path's gradients are as close to fp32's as with each CUDA lever off`, async (t) => {
        if (!cuda) return t.skip(SKIP);
        assert.ok(runtimeInfo().cudaKernels, 'this CUDA build has no kernels of its own: nvcc was not found when it was built');
        const exact = await gradientStep(name, 'cuda', 'fp32');
        const mine = gradientError(await gradientStep(name, 'cuda', precision), exact);
        const levers = ['aten-layernorm', 'autograd-linear', ...(name === 'tiny_rn' ? ['separate-bias-relu', 'separate-batchnorm', 'avg-pool2d'] : [])];
        for (const off of [...levers, levers.join(',')]) {
          const theirs = gradientError(await withExperiments(off, () => gradientStep(name, 'cuda', precision)), exact);
          t.diagnostic(`${name} ${precision}: gradients ${fmt(mine.total)} from fp32's; with ${off}: ${fmt(theirs.total)}`);
          assertAsCloseAs(mine, theirs, `${name} ${precision} against ${off}`);
        }
      });
    }
  }

  // The folded BatchNorm and the bias-relu kernel on top of it (both CUDA's defaults), with BatchNorm
  // statistics of their own (the fixture's are the identity): fp32 features as with BatchNorm apart,
  // and the kernel's half-precision gradients as close to fp32's as the fold's without it.
  test('tiny_rn, BatchNorms of their own: the fold, with and without the bias-relu kernel, gives BatchNorm\'s fp32 features; the kernel\'s bf16/fp16 gradients as close to fp32\'s as the fold\'s', async (t) => {
    if (!cuda) return t.skip(SKIP);
    assert.ok(runtimeInfo().cudaKernels, 'this CUDA build has no kernels of its own: nvcc was not found when it was built');
    const { images } = await goldenBatch('tiny_rn');
    const features = async (experiments: string | undefined) => {
      const model = await withExperiments(experiments, () => loadModel(fixture('models', 'tiny_rn.safetensors'), { device: 'cuda' }));
      await randomizeBatchNorms(model);
      return (await model.encodeImage(images)).data;
    };
    const apart = await features('separate-batchnorm');
    assertAllClose(await features('separate-bias-relu'), apart, { rtol: 1e-4, atol: 1e-6, what: 'folded' });
    assertAllClose(await features(undefined), apart, { rtol: 1e-4, atol: 1e-6, what: 'folded, bias-relu kernel' });
    const exact = await gradientStep('tiny_rn', 'cuda', 'fp32');
    for (const precision of ['bf16', 'fp16'] as const) {
      const theirs = gradientError(await withExperiments('separate-bias-relu', () => gradientStep('tiny_rn', 'cuda', precision)), exact);
      const mine = gradientError(await gradientStep('tiny_rn', 'cuda', precision), exact);
      t.diagnostic(`tiny_rn ${precision}: gradients ${fmt(mine.total)} from fp32's with bias-relu-kernel, ${fmt(theirs.total)} without`);
      assertAsCloseAs(mine, theirs, `tiny_rn ${precision} bias-relu-kernel`);
    }
  });

  test('tiny_vit fp32: a graph released for a batch that ran out of memory beside it is captured again, and the steps agree', async (t) => {
    if (!cuda) return t.skip(SKIP);
    const eager = await runScriptedSteps('tiny_vit', { device: 'cuda', precision: 'fp32', cudaGraph: false });
    process.env.CLIP_NATIVE_EMULATE_OOM_BESIDE_GRAPH = '1'; // the out-of-memory is emulated; the graphs are real
    try {
      const graphed = await runScriptedSteps('tiny_vit', { device: 'cuda', precision: 'fp32', cudaGraph: true });
      assert.equal(graphed.statuses[5], 'warming up (released to make room for a batch of another shape)');
      assert.equal(graphed.statuses.at(-1), 'captured');
      assertRunsAgree(graphed, eager, { lossRtol: 1e-5, lossAtol: 1e-5, updateShare: 1e-2 }, 'tiny_vit fp32, graph released once');
    } finally {
      delete process.env.CLIP_NATIVE_EMULATE_OOM_BESIDE_GRAPH;
    }
  });

  // Performance experiments (CLIP_NATIVE_EXPERIMENTS) compute the reference's numbers by another path:
  // the goldens in fp32, and three Adam steps whose updates (about lr per weight, signed by the
  // gradient) expose a wrong backward.
  for (const experiment of ['reference-mlp', 'aten-layernorm', 'autograd-linear', 'separate-bias-relu', 'separate-batchnorm,avg-pool2d']) {
    test(`experiment ${experiment}: fp32 on CUDA matches the goldens, and three Adam steps the reference's`, async (t) => {
      if (!cuda) return t.skip(SKIP);
      for (const name of ['tiny_vit', 'tiny_rn']) {
        const { g, images, tokens } = await goldenBatch(name);
        const model = await withExperiments(experiment, () => loadModel(fixture('models', `${name}.safetensors`), { device: 'cuda' }));
        const prefix = name === 'tiny_rn' ? 'train.' : '';
        if (prefix) model.train();
        assertAllClose((await model.encodeText(tokens)).data, g.float32(`${prefix}text_features`).data, { what: `${name} text features (${experiment})` });
        assertAllClose((await model.forward(images, tokens)).logitsPerImage.data, g.float32(`${prefix}logits_per_image`).data, { what: `${name} logits (${experiment})` });
        // Under bf16 the experiment must stay about as close to fp32 as the default path (its own bf16 paths).
        const plain = await withExperiments(undefined, () => loadModel(fixture('models', `${name}.safetensors`), { device: 'cuda' }));
        if (prefix) plain.train();
        const drift = async (m: typeof model) =>
          logitDrift((await m.forward(images, tokens, { precision: 'bf16' })).logitsPerImage.data, (await m.forward(images, tokens, { precision: 'fp32' })).logitsPerImage.data).relative;
        const [mine, theirs] = [await drift(model), await drift(plain)];
        t.diagnostic(`${name} ${experiment}: bf16 logits within ${(mine * 100).toFixed(2)} % of fp32 (default path ${(theirs * 100).toFixed(2)} %)`);
        assert.ok(mine <= Math.max(0.03, 1.5 * theirs), `bf16 drift ${mine} vs the default path's ${theirs}`);
      }
      const { images, tokens } = await goldenBatch('tiny_vit');
      const reference = await readAdam3('tiny_vit');
      const model = await withExperiments(experiment, () => loadModel(fixture('models', 'tiny_vit.safetensors'), { device: 'cuda' }));
      const trainer = await createTrainer(model, { lr: 1e-3, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.001, batchNorm: 'train' });
      const expected = reference.float32('losses').data;
      for (let i = 0; i < 3; i++) {
        const loss = await trainer.step(images, tokens);
        assert.ok(Math.abs(loss - expected[i]!) <= 1e-4 * Math.abs(expected[i]!), `step ${i}: ${loss} vs ${expected[i]}`);
      }
      await assertParametersMatchAdam3(model, reference);
    });
  }

  test('cudaMemory reports the allocator: a peak at least the current use, reset to it on request', async (t) => {
    if (!cuda) return t.skip(SKIP);
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'), { device: 'cuda' });
    const { images, tokens } = await goldenBatch('tiny_vit');
    await model.forward(images, tokens);
    const before = cudaMemory(0, true);
    assert.equal(before.available, true);
    assert.ok(before.allocatedBytes > 0 && before.peakAllocatedBytes >= before.allocatedBytes && before.reservedBytes >= before.allocatedBytes);
    const after = cudaMemory(0);
    // The forward's activations were freed: its peak lies above what stays allocated, to which the reset brought the peak.
    assert.ok(after.peakAllocatedBytes < before.peakAllocatedBytes, `peak ${after.peakAllocatedBytes} after the reset, ${before.peakAllocatedBytes} before`);
    assert.ok(after.peakAllocatedBytes >= after.allocatedBytes);
  });

  test('a CUDA device that does not exist is a JS error, not a crash', async (t) => {
    if (!cuda) return t.skip(SKIP);
    await assert.rejects(loadModel(fixture('models', 'tiny_vit.safetensors'), { device: 'cuda:99' }), /does not exist/);
  });
});
