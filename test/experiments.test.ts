// Performance experiments (CLIP_NATIVE_EXPERIMENTS, native/common/experiments.h) compute what the
// default path computes: the fixtures' reference outputs within the same tolerances. The training
// parity under each experiment is in train-parity.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import { loadModel } from '../src/model/model.js';
import { withExperiments } from './helpers/experiments.js';
import { fixture } from './helpers/fixtures.js';
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

describe('experiment quick-gelu-kernel', () => {
  test('where the CUDA kernels do not run (a CPU tensor), it is the reference formula, bit for bit', async () => {
    const g = await readSafetensors(fixture('models', 'tiny_vit.golden.safetensors'));
    const tokens = g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
    const kernel = await withExperiments('quick-gelu-kernel', () => loadModel(fixture('models', 'tiny_vit.safetensors')));
    const reference = await withExperiments('reference-mlp', () => loadModel(fixture('models', 'tiny_vit.safetensors')));
    assert.deepEqual((await kernel.encodeText(tokens)).data, (await reference.encodeText(tokens)).data);
  });
});
