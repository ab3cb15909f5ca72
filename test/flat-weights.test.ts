// Under autocast the trainer casts the trainable weights of every matrix product and convolution at
// once (native/train/flat_weights.h) instead of once per product. The experiment per-op-casts keeps
// autocast's own casts: both must train bit for bit alike, and the default must launch fewer casts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import { loadModel, type ClipModel, type LoadModelOptions } from '../src/model/model.js';
import { createTrainer, type TrainerOptions } from '../src/train/trainer.js';
import { withExperiments } from './helpers/experiments.js';
import { fixture } from './helpers/fixtures.js';

async function batch(name: string) {
  const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
  return { images: g.float32('images'), tokens: g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] } };
}

const load = (name: string, experiment: string | undefined, options: LoadModelOptions = {}) =>
  withExperiments(experiment, () => loadModel(fixture('models', `${name}.safetensors`), options));

async function weights(model: ClipModel) {
  return (await model.stateDict()).map((e) => ({ name: e.name, bytes: Buffer.from(e.tensor.data.buffer, e.tensor.data.byteOffset, e.tensor.data.byteLength) }));
}

/** Steps with the casts at once and with autocast's per-product casts: every loss and weight identical. */
async function assertBitwiseSameTraining(name: string, options: Partial<TrainerOptions>, loadOptions: LoadModelOptions = {}, steps = 4) {
  const { images, tokens } = await batch(name);
  const run = async (experiment: string | undefined) => {
    const model = await load(name, experiment, loadOptions);
    const trainer = await withExperiments(experiment, () => createTrainer(model, { lr: 1e-3, precision: 'bf16', ...options }));
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) losses.push(await trainer.step(images, tokens));
    return { losses, state: await weights(model) };
  };
  const perOp = await run('per-op-casts');
  const atOnce = await run(undefined);
  assert.deepEqual(atOnce.losses, perOp.losses, 'losses');
  let moved = 0;
  const initial = await weights(await load(name, undefined, loadOptions));
  atOnce.state.forEach(({ name: key, bytes }, i) => {
    assert.ok(bytes.equals(perOp.state[i]!.bytes), `${key} differs from the per-op-casts run`);
    if (!bytes.equals(initial[i]!.bytes)) moved++;
  });
  assert.ok(moved > atOnce.state.length / 2, `only ${moved} of ${atOnce.state.length} tensors were trained`);
}

describe('product weights cast at once under autocast (experiment per-op-casts: per product)', () => {
  test('tiny_vit bf16, Adam: four steps give the same losses and weights bit for bit', async () => {
    await assertBitwiseSameTraining('tiny_vit', {});
  });

  test('tiny_rn bf16, channels-last convolutions, AdamW with clipping: the same bit for bit', async () => {
    await assertBitwiseSameTraining('tiny_rn', { optimizer: 'adamw', weightDecay: 0.1, gradClip: 0.5 }, { memoryFormat: 'channels_last' });
  });

  test('tiny_vit bf16, two micro-batches per step and the text tower frozen: the same bit for bit', async () => {
    await assertBitwiseSameTraining('tiny_vit', { accumulate: 2, lockText: true }, {}, 6);
  });

  test('a profiled step launches two casts where autocast launched one per product weight and gradient', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const casts = async (experiment: string | undefined) => {
      const trainer = await withExperiments(experiment, async () => createTrainer(await load('tiny_vit', experiment), { lr: 1e-3, precision: 'bf16' }));
      await trainer.step(images, tokens); // the first forward names the weights
      const rows = await trainer.profile(images, tokens, { steps: 1 });
      return rows.find((r) => r.name === 'aten::_to_copy')?.calls ?? 0;
    };
    // The weights the products read: attention, MLP, patch embedding and both projections.
    const products = (await weights(await load('tiny_vit', undefined))).filter(({ name }) =>
      /(in_proj_(weight|bias)|out_proj\.(weight|bias)|c_fc\.(weight|bias)|c_proj\.(weight|bias)|conv1\.weight|^visual\.proj|^text_projection)$/.test(name),
    ).length;
    assert.ok(products > 10);
    assert.equal((await casts('per-op-casts')) - (await casts(undefined)), 2 * products - 2);
  });

  test('weights loaded into the model mid-training are what the next step computes with', async () => {
    const { images, tokens } = await batch('tiny_vit');
    const model = await load('tiny_vit', undefined);
    const start = await model.stateDict();
    const trainer = await createTrainer(model, { lr: 1e-2, precision: 'bf16' });
    const first = await trainer.step(images, tokens);
    const second = await trainer.step(images, tokens);
    const third = await trainer.step(images, tokens);
    assert.notEqual(third, first);
    assert.notEqual(second, first);
    await model.loadStateDict(start);
    assert.equal(await trainer.step(images, tokens), first, 'the loss of the loaded weights, as at the first step');
  });
});
