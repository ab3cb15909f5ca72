// Performance experiments (CLIP_NATIVE_EXPERIMENTS, native/common/experiments.h) compute what the
// default path computes: the fixtures' reference outputs within the same tolerances. The training
// parity under each experiment is in train-parity.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import { loadModel, type ClipModel } from '../src/model/model.js';
import { createTrainer } from '../src/train/trainer.js';
import { randomizeBatchNorms } from './helpers/batch-norms.js';
import { withExperiments } from './helpers/experiments.js';
import { fixture } from './helpers/fixtures.js';
import { assertAsCloseAs, fmt, gradientError, gradientStep } from './helpers/gradient-step.js';
import { assertAllClose } from './helpers/tensors.js';

// On CUDA the MLP computes QuickGELU as silu with the scalings in the matrix products (layers.cc); the
// experiment fused-mlp does so on the CPU too, so that CI covers the CUDA default path's arithmetic.
describe('experiment fused-mlp (the default on CUDA)', () => {
  for (const name of ['tiny_vit', 'tiny_rn']) {
    test(`${name}: fp32 features and logits match the reference goldens (rtol 1e-4, atol 1e-5), by another path`, async () => {
      const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
      const images = g.float32('images');
      const tokens = g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
      const fused = await withExperiments('fused-mlp', () => loadModel(fixture('models', `${name}.safetensors`)));
      const plain = await withExperiments(undefined, () => loadModel(fixture('models', `${name}.safetensors`)));
      const text = await fused.encodeText(tokens);
      assertAllClose(text.data, g.float32('text_features').data, { what: `${name} text features` });
      assertAllClose((await fused.encodeImage(images)).data, g.float32('image_features').data, { what: `${name} image features` });
      assertAllClose((await fused.forward(images, tokens)).logitsPerImage.data, g.float32('logits_per_image').data, { what: `${name} logits` });
      // The experiment really ran: rounding differs from the default path somewhere.
      assert.notDeepEqual(text.data, (await plain.encodeText(tokens)).data);
    });
  }
});

// LayerNorm by the own CUDA kernels (layer_norm_kernel.cc) with the residual add before it joined,
// CUDA's default, which also reorders the blocks' adds (transformer forward_joined in layers.cc);
// experiment aten-layernorm keeps ATen's LayerNorm and the blocks' adds as they were.
describe('LayerNorm by the own kernels (the default; experiment aten-layernorm: ATen\'s)', () => {
  test('where the CUDA kernels do not run (CPU tensors): ATen\'s path, bit for bit in fp32 and bf16, forward and training', async () => {
    for (const name of ['tiny_vit', 'tiny_rn']) {
      const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
      const [images, tokens] = [g.float32('images'), g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] }];
      const load = (list: string | undefined) => withExperiments(list, () => loadModel(fixture('models', `${name}.safetensors`)));
      const [mine, aten] = [await load(undefined), await load('aten-layernorm')];
      for (const precision of ['fp32', 'bf16'] as const) {
        const [a, b] = [await mine.forward(images, tokens, { precision }), await aten.forward(images, tokens, { precision })];
        assert.deepEqual(a.logitsPerImage.data, b.logitsPerImage.data, `${name} ${precision}`);
      }
      const train = async (model: ClipModel) => {
        const trainer = await createTrainer(model, { optimizer: 'adamw', lr: 1e-3, precision: 'bf16', batchNorm: 'train' });
        const losses = [await trainer.step(images, tokens), await trainer.step(images, tokens)];
        return { losses, state: (await model.stateDict()).map((e) => e.tensor.data) };
      };
      assert.deepEqual(await train(mine), await train(aten), `${name}: bf16 training`);
    }
  });
});

const tinyRnBatch = async () => {
  const g = await readSafetensors(fixture('models', 'tiny_rn.golden.safetensors'));
  return { g, images: g.float32('images'), tokens: g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] } };
};

/**
 * Three AdamW steps on the fixture batch with and without an experiment: the same losses, and every
 * weight the same up to 1e-3 of how far it moved. eps 1 keeps each update proportional to its gradient
 * (|g| ≪ 1 here), as SGD with momentum: with Adam's usual eps, a gradient that is zero up to rounding
 * (attention's key bias) becomes an lr-sized step in a direction rounding picks. Returns the names
 * of the tensors that moved.
 */
async function assertSameTraining(
  load: (experiment: string | undefined) => Promise<ClipModel>,
  experiment: string,
  batchNorm: 'frozen' | 'train',
  batch?: { images: { data: Float32Array; shape: number[] }; tokens: { data: BigInt64Array; shape: number[] } },
) {
  const { images, tokens } = batch ?? (await tinyRnBatch());
  const train = async (model: ClipModel) => {
    const trainer = await createTrainer(model, { optimizer: 'adamw', lr: 1e-2, eps: 1, weightDecay: 0.1, batchNorm });
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) losses.push(await trainer.step(images, tokens));
    return { losses, state: await model.stateDict() };
  };
  const initial = new Map((await (await load(undefined)).stateDict()).map((e) => [e.name, e.tensor.data]));
  const plain = await train(await load(undefined));
  const other = await train(await load(experiment));
  assertAllClose(other.losses, plain.losses, { rtol: 1e-5, atol: 0, what: 'losses' });
  const moved: string[] = [];
  plain.state.forEach(({ name, tensor }, i) => {
    const [a, b, start] = [tensor.data, other.state[i]!.tensor.data, initial.get(name)];
    if (!(a instanceof Float32Array) || !(b instanceof Float32Array) || !(start instanceof Float32Array)) return assert.deepEqual(b, a, name);
    let diff = 0;
    let update = 0;
    let magnitude = 0;
    for (let j = 0; j < a.length; j++) {
      diff = Math.max(diff, Math.abs(a[j]! - b[j]!));
      update = Math.max(update, Math.abs(a[j]! - start[j]!));
      magnitude = Math.max(magnitude, Math.abs(a[j]!));
    }
    // Besides 1e-3 of the update, a few float32 ulps of the weights' size: a tensor whose update is
    // itself a few ulps (a bias that barely moves) cannot agree more closely than its rounding.
    const ulps = 4 * magnitude * 2 ** -23;
    assert.ok(diff <= 1e-3 * update + ulps, `${experiment}: ${name} differs by ${diff} (its update ${update}, 4 ulps ${ulps})`);
    if (update > 0) moved.push(name);
  });
  return moved;
}

/** tiny_rn (in eval mode) against the reference's fp32 features and logits; returns its image features. */
async function assertTinyRnGoldens(model: ClipModel) {
  const { g, images, tokens } = await tinyRnBatch();
  const features = await model.encodeImage(images);
  assertAllClose(features.data, g.float32('image_features').data, { what: 'tiny_rn image features' });
  assertAllClose((await model.forward(images, tokens)).logitsPerImage.data, g.float32('logits_per_image').data, { what: 'tiny_rn logits' });
  return features;
}

/** `load`, then the model's BatchNorms given statistics of their own (the fixture's are the identity). */
const withOwnStatistics =
  (load: (experiment: string | undefined) => Promise<ClipModel>) =>
  async (experiment: string | undefined): Promise<ClipModel> => {
    const model = await load(experiment);
    await randomizeBatchNorms(model);
    return model;
  };

// Frozen BatchNorm folded into the convolution before it (modified_resnet.cc; CUDA's default, forced on
// the CPU by experiment fold-batchnorm): the reference's eval outputs, and training steps (which reach
// the BatchNorm's γ and β through the fold) as without it.
describe('frozen BatchNorm folded (experiment fold-batchnorm)', () => {
  const load = (experiment: string | undefined) => withExperiments(experiment, () => loadModel(fixture('models', 'tiny_rn.safetensors')));
  const loadOwnStatistics = withOwnStatistics(load);

  test('tiny_rn in eval mode: fp32 features and logits match the reference goldens, by another path', async () => {
    const { images } = await tinyRnBatch();
    const features = await assertTinyRnGoldens(await load('fold-batchnorm'));
    assert.notDeepEqual(features.data, (await (await load(undefined)).encodeImage(images)).data, 'the fold changed no rounding: did it run?');
  });

  test('BatchNorms with statistics of their own (the fixture\'s are the identity): fp32 features as with BatchNorm apart', async () => {
    const { images } = await tinyRnBatch();
    const identity = (await (await load(undefined)).encodeImage(images)).data;
    const [mine, theirs] = [(await (await loadOwnStatistics('fold-batchnorm')).encodeImage(images)).data, (await (await loadOwnStatistics(undefined)).encodeImage(images)).data];
    assertAllClose(mine, theirs, { rtol: 1e-4, atol: 1e-6, what: 'tiny_rn image features, BatchNorms of their own' });
    assert.ok(theirs.some((v, i) => Math.abs(v - identity[i]!) > 1e-3), 'the BatchNorms changed nothing');
  });

  test('three AdamW steps with frozen BatchNorm (statistics of their own): the same losses and weights, γ and β included', async () => {
    const moved = await assertSameTraining(loadOwnStatistics, 'fold-batchnorm', 'frozen');
    assert.ok(moved.some((name) => /\.bn\d?\.(weight|bias)$|downsample\.1\.(weight|bias)$/.test(name)), 'no BatchNorm γ or β was trained');
  });
});

// A folded BatchNorm's shift, the residual and the ReLU in one CUDA kernel (bias_relu_kernel.cc); on
// the CPU the same fp32 arithmetic by ATen, which is what is checked here (the kernel itself:
// cuda-kernels-on-cpu.test.ts).
describe('bias-relu-kernel (CUDA\'s default; with the BatchNorm folded)', () => {
  const load = (experiment: string | undefined) =>
    withExperiments(experiment ? `fold-batchnorm,${experiment}` : 'fold-batchnorm', () => loadModel(fixture('models', 'tiny_rn.safetensors')));
  // The fixture's BatchNorms are the identity, so their shifts are zero: these have shifts to add.
  const loadOwnStatistics = withOwnStatistics(load);

  test('tiny_rn in eval mode: fp32 features and logits match the reference goldens', async () => {
    const { images } = await tinyRnBatch();
    await assertTinyRnGoldens(await load('bias-relu-kernel'));
    // In fp32 it is the folded path's arithmetic to the bit; under bf16 it rounds once where that rounds
    // twice, which shows where the shifts are not zero.
    const bf16 = async (m: ClipModel) => (await m.encodeImage(images, { precision: 'bf16' })).data;
    assert.notDeepEqual(await bf16(await loadOwnStatistics('bias-relu-kernel')), await bf16(await loadOwnStatistics(undefined)), 'the same bf16 rounding as the folded path: did it run?');
  });

  test('three AdamW steps with frozen BatchNorm (statistics of their own): the same losses and weights as the fold alone', async () => {
    const moved = await assertSameTraining(loadOwnStatistics, 'bias-relu-kernel', 'frozen');
    assert.ok(moved.some((name) => /\.bn\d?\.(weight|bias)$/.test(name)), 'no BatchNorm γ or β was trained');
  });

  test('bf16: gradients as close to fp32\'s as the fold alone gives', async (t) => {
    const exact = await gradientStep('tiny_rn', 'cpu', 'fp32');
    const theirs = gradientError(await withExperiments('fold-batchnorm', () => gradientStep('tiny_rn', 'cpu', 'bf16')), exact);
    const mine = gradientError(await withExperiments('fold-batchnorm,bias-relu-kernel', () => gradientStep('tiny_rn', 'cpu', 'bf16')), exact);
    t.diagnostic(`tiny_rn bf16: gradients ${fmt(mine.total)} from fp32's with the experiment, ${fmt(theirs.total)} with the fold alone`);
    assertAsCloseAs(mine, theirs, 'tiny_rn bf16 bias-relu-kernel');
  });
});

// The ResNet's anti-aliasing pools as a mean over a view of a channels-last tensor (modified_resnet.cc;
// CUDA's default, forced on the CPU by experiment pool-by-mean).
describe('pools by means (experiment pool-by-mean)', () => {
  const load = (experiment: string | undefined) =>
    withExperiments(experiment, () => loadModel(fixture('models', 'tiny_rn.safetensors'), { memoryFormat: 'channels_last' }));

  test('tiny_rn, channels-last: the goldens in eval mode, by means instead of avg_pool2d', async () => {
    const { images, tokens } = await tinyRnBatch();
    const model = await load('pool-by-mean');
    await assertTinyRnGoldens(model);
    // The pools really went: a profiled training step shows means and no avg_pool2d.
    const trainer = await createTrainer(model, { lr: 1e-3 });
    const ops = new Set((await trainer.profile(images, tokens, { steps: 1 })).map((r) => r.name));
    assert.ok(ops.has('aten::mean') && !ops.has('aten::avg_pool2d'), 'avg_pool2d still ran');
  });

  test('three AdamW steps (BatchNorm training too): the same losses and weights as avg_pool2d', async () => {
    const moved = await assertSameTraining(load, 'pool-by-mean', 'train');
    assert.ok(moved.some((name) => name.startsWith('visual.layer1.')), 'the first stage was not trained');
  });
});

// Prompts are cut after the batch's last end-of-text token (ClipImpl::trim_tokens); the experiment
// full-text-context keeps all 77 positions, as the reference computes them.
describe('text tokens trimmed after the last end-of-text token (experiment full-text-context: whole)', () => {
  const load = (experiment: string | undefined) => withExperiments(experiment, () => loadModel(fixture('models', 'tiny_vit.safetensors')));
  // The golden batch's prompts, with their ends moved: one at position 3 followed by other tokens
  // (which a causal, EOT-pooled tower must ignore), one at position 20.
  const batch = async () => {
    const g = await readSafetensors(fixture('models', 'tiny_vit.golden.safetensors'));
    const tokens = g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
    const [n, context] = tokens.shape as [number, number];
    const data = new BigInt64Array(tokens.data);
    const row = (i: number, end: number) => {
      for (let j = 1; j < context; j++) data[i * context + j] = j < end ? BigInt(400 + ((i * 13 + j * 7) % 3000)) : j === end ? 49407n : j < end + 10 ? 777n : 0n;
    };
    for (let i = 0; i < n; i++) row(i, i === 1 ? 20 : 3);
    return { images: g.float32('images'), tokens: { data, shape: [n, context] } };
  };

  test('the same text features as the whole context, with tokens after the end ignored', async () => {
    const { tokens } = await batch();
    const whole = await (await load('full-text-context')).encodeText(tokens);
    const trimmed = await (await load(undefined)).encodeText(tokens);
    assertAllClose(trimmed.data, whole.data, { rtol: 1e-5, atol: 1e-6, what: 'text features' });
  });

  test('training: the tower runs 24 of 77 positions, and the steps equal those of the whole context', async () => {
    const data = await batch();
    const trainer = await createTrainer(await load(undefined), { lr: 1e-3 });
    assert.equal(trainer.textLength, 0);
    await trainer.step(data.images, data.tokens);
    assert.equal(trainer.textLength, 24, 'the last end at position 20, rounded up to 8');
    // A batch of shorter prompts keeps the length (one shape for a CUDA graph).
    const short = { data: new BigInt64Array(data.tokens.data), shape: data.tokens.shape };
    short.data.fill(0n, 77, 154);
    short.data.set([49406n, 500n, 49407n], 77);
    await trainer.step(data.images, short);
    assert.equal(trainer.textLength, 24);
    const whole = await createTrainer(await load('full-text-context'), { lr: 1e-3 });
    await whole.step(data.images, data.tokens);
    assert.equal(whole.textLength, 77);
    await assertSameTraining(load, 'full-text-context', 'frozen', data);
  });
});

// The products' backward written out (own_linear_backward.cc): on the CPU the bias gradient is ATen's
// sum there too, so what is checked here is the autograd around it — casts undone, alpha inside the
// products (with fused-mlp), gradients reaching every weight and bias; the column-sum kernel has its own
// check (cuda-kernels-on-cpu.test.ts). CUDA's default; experiment own-linear-backward forces it here.
describe('the products\' own backward (experiment own-linear-backward)', () => {
  for (const name of ['tiny_vit', 'tiny_rn'] as const) {
    const load = (experiment: string | undefined) => withExperiments(experiment, () => loadModel(fixture('models', `${name}.safetensors`)));

    test(`${name}: fp32 goldens, and three AdamW steps as the default path's (the reference's QuickGELU form)`, async () => {
      const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
      const [images, tokens] = [g.float32('images'), g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] }];
      const model = await load('own-linear-backward');
      assertAllClose((await model.encodeText(tokens)).data, g.float32('text_features').data, { what: `${name} text features` });
      const moved = await assertSameTraining(load, 'own-linear-backward', 'train', { images, tokens });
      for (const param of ['transformer.resblocks.0.attn.in_proj_bias', 'transformer.resblocks.0.attn.out_proj.bias', 'transformer.resblocks.0.mlp.c_fc.bias', 'transformer.resblocks.0.mlp.c_proj.weight']) {
        assert.ok(moved.includes(param), `${param} was not trained`);
      }
    });
  }

  test('tiny_vit with fused-mlp (alpha inside the products): three AdamW steps as fused-mlp alone', async () => {
    const g = await readSafetensors(fixture('models', 'tiny_vit.golden.safetensors'));
    const [images, tokens] = [g.float32('images'), g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] }];
    const load = (experiment: string | undefined) => withExperiments(experiment ? `fused-mlp,${experiment}` : 'fused-mlp', () => loadModel(fixture('models', 'tiny_vit.safetensors')));
    const moved = await assertSameTraining(load, 'own-linear-backward', 'frozen', { images, tokens });
    assert.ok(moved.includes('visual.transformer.resblocks.0.mlp.c_fc.bias') && moved.includes('transformer.resblocks.0.mlp.c_proj.bias'), 'the MLP biases were not trained');
  });

  test('bf16 training (weights cast at once, and autocast\'s per-product casts): the default path\'s losses', async () => {
    const g = await readSafetensors(fixture('models', 'tiny_vit.golden.safetensors'));
    const [images, tokens] = [g.float32('images'), g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] }];
    for (const casts of [undefined, 'per-op-casts']) {
      const run = async (experiment: string | undefined) => {
        const list = [casts, experiment].filter(Boolean).join(',') || undefined;
        const model = await withExperiments(list, () => loadModel(fixture('models', 'tiny_vit.safetensors')));
        const trainer = await withExperiments(list, () => createTrainer(model, { lr: 1e-3, precision: 'bf16' }));
        const losses: number[] = [];
        for (let i = 0; i < 4; i++) losses.push(await trainer.step(images, tokens));
        return losses;
      };
      assertAllClose(await run('own-linear-backward'), await run(undefined), { rtol: 1e-2, atol: 0, what: `losses (${casts ?? 'cast at once'})` });
    }
  });
});

// What test/cuda.test.ts asks of CUDA's default levers under bf16 (gradients as close to fp32's as with
// each lever off), asked here of those that run on the CPU when forced: it checks the check as well.
describe('CUDA\'s default levers forced on the CPU, under bf16', () => {
  test('tiny_rn and tiny_vit: gradients as close to fp32\'s as without them; a halved bias gradient is caught', async (t) => {
    for (const name of ['tiny_rn', 'tiny_vit'] as const) {
      // The MLP in CUDA's form on both sides: on the CPU its silu form drifts more than the reference's
      // (layers.cc), which is why the CPU keeps the reference's.
      const exact = await gradientStep(name, 'cpu', 'fp32');
      const theirs = gradientError(await withExperiments('fused-mlp', () => gradientStep(name, 'cpu', 'bf16')), exact);
      const levers = await withExperiments('fold-batchnorm,own-linear-backward,fused-mlp', () => gradientStep(name, 'cpu', 'bf16'));
      const mine = gradientError(levers, exact);
      t.diagnostic(`${name} bf16: gradients ${fmt(mine.total)} from fp32's with the levers, ${fmt(theirs.total)} without`);
      assertAsCloseAs(mine, theirs, `${name} bf16`);
      assert.ok(theirs.total > 1e-3, `${name}: bf16 gradients equal to fp32's (${fmt(theirs.total)}): did bf16 run?`);
      const bias = 'transformer.resblocks.0.mlp.c_proj.bias';
      levers.set(bias, levers.get(bias)!.map((v) => v / 2));
      assert.throws(() => assertAsCloseAs(gradientError(levers, exact), theirs, name), new RegExp(bias.replaceAll('.', '\\.')));
    }
  });
});
