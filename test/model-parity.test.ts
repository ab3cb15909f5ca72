// The native CLIP model against the reference implementation's golden outputs, for every weight
// format the fixtures hold, and in both modes for the ResNet (whose eval outputs barely see the image).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import type { ClipConfig } from '../src/model/config.js';
import { loadModel, type ClipModel } from '../src/model/model.js';
import { fixture } from './helpers/fixtures.js';
import { assertAllClose } from './helpers/tensors.js';
import { scratchDir } from './helpers/scratch.js';

const tmp = scratchDir('clip-native-parity-');

async function goldens(name: string) {
  const g = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
  const tokens = g.tensor('text_tokens');
  assert.equal(tokens.dtype, 'I64');
  return { g, images: g.float32('images'), tokens: tokens as { data: BigInt64Array; shape: number[] } };
}

async function checkForward(model: ClipModel, name: string, prefix: '' | 'train.', atolImage = 1e-5) {
  const { g, images, tokens } = await goldens(name);
  if (prefix === 'train.') model.train();
  else model.eval();
  const tol = { rtol: 1e-4, atol: 1e-5 };
  const imageFeatures = await model.encodeImage(images);
  assertAllClose(imageFeatures.data, g.float32(`${prefix}image_features`).data, { ...tol, atol: atolImage, what: `${name} ${prefix}image_features` });
  const textFeatures = await model.encodeText(tokens);
  assertAllClose(textFeatures.data, g.float32(`${prefix}text_features`).data, { ...tol, what: `${name} ${prefix}text_features` });
  const { logitsPerImage, logitsPerText } = await model.forward(images, tokens);
  assert.deepEqual(logitsPerImage.shape, [4, 4]);
  assertAllClose(logitsPerImage.data, g.float32(`${prefix}logits_per_image`).data, { ...tol, what: `${name} ${prefix}logits_per_image` });
  assertAllClose(logitsPerText.data, g.float32(`${prefix}logits_per_text`).data, { ...tol, what: `${name} ${prefix}logits_per_text` });
}

/**
 * The fixtures' architecture, from their safetensors metadata. TorchScript archives and torch.save
 * state dicts carry none, and the reference's shape inference would take 64 / 64 = 1 text head where
 * these tiny models have 4 (fixtures README), so those formats are loaded with it given explicitly.
 */
async function fixtureConfig(name: string): Promise<ClipConfig> {
  const file = await readSafetensors(fixture('models', `${name}.safetensors`));
  return JSON.parse(file.header.metadata.config!) as ClipConfig;
}

// Formats each fixture is published in (the README lists which full files were left out).
const formats: Record<string, string[]> = {
  tiny_vit: ['safetensors', 'torchscript.pt'],
  tiny_rn: ['safetensors'],
};

for (const [name, files] of Object.entries(formats)) {
  describe(`${name} matches the reference`, () => {
    for (const format of files) {
      test(`loaded from ${name}.${format}: eval-mode features and logits`, async () => {
        const config = format === 'safetensors' ? undefined : await fixtureConfig(name);
        const model = await loadModel(fixture('models', `${name}.${format}`), { config });
        assert.deepEqual(model.source?.report, { missing: [], unexpected: [], mismatched: [], ignored: [] });
        // The RN's eval features vary by ~2e-5 across images: compare them at the README's tighter atol.
        await checkForward(model, name, '', name === 'tiny_rn' ? 1e-6 : 1e-5);
        model.dispose();
      });
    }
    test('train-mode forward (BatchNorm on batch statistics for the ResNet)', async () => {
      const model = await loadModel(fixture('models', `${name}.safetensors`));
      await checkForward(model, name, 'train.');
    });
    for (const format of ['safetensors', 'pt'] as const) {
      test(`saved as ${format} and loaded back: bitwise the same weights and outputs`, async () => {
        const original = await loadModel(fixture('models', `${name}.safetensors`));
        const file = path.join(tmp, `${name}.${format === 'pt' ? 'pt' : 'safetensors'}`);
        await original.save(file, { format });
        const reloaded = await loadModel(file, { config: format === 'pt' ? await fixtureConfig(name) : undefined });
        assert.equal(reloaded.source?.format, format === 'pt' ? 'torch-pickle' : 'safetensors');
        const [a, b] = await Promise.all([original.stateDict(), reloaded.stateDict()]);
        assert.deepEqual(b.map((e) => e.name), a.map((e) => e.name));
        for (let i = 0; i < a.length; i++) {
          assert.deepEqual(Buffer.from(b[i]!.tensor.data.buffer), Buffer.from(a[i]!.tensor.data.buffer), `${a[i]!.name} differs after the round trip`);
        }
        await checkForward(reloaded, name, 'train.');
      });
    }
  });
}

test('the configuration comes from the safetensors metadata, not from guessing heads', async () => {
  const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
  assert.equal(model.source?.configSource, 'metadata');
  // build_model would infer 64 / 64 = 1 text head; the metadata says 4.
  assert.equal(model.config.transformer_heads, 4);
  assert.equal(model.parameterCount(), 3_384_897);
  const rn = await loadModel(fixture('models', 'tiny_rn.safetensors'));
  assert.equal(rn.parameterCount(), 4_582_137);
});

test('a TorchScript archive without metadata gives its text head count through its traced graph', async () => {
  const model = await loadModel(fixture('models', 'tiny_vit.torchscript.pt'));
  assert.equal(model.source?.format, 'torchscript');
  assert.match(model.source!.configSource, /^inferred \(text heads from the TorchScript graph\)/);
  assert.deepEqual(model.config, await fixtureConfig('tiny_vit'));
  await checkForward(model, 'tiny_vit', '');
});

test('a torch.save state dict without metadata is inferred as the reference does (heads = width / 64)', async () => {
  const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
  const dir = mkdtempSync(path.join(tmp, 'alone-'));
  const file = path.join(dir, 'tiny_vit.state_dict.pt');
  await model.save(file, { format: 'pt' });
  const inferred = await loadModel(file);
  assert.equal(inferred.source?.configSource, 'inferred');
  assert.equal(inferred.config.transformer_heads, 1);
  assert.deepEqual({ ...inferred.config, transformer_heads: 4 }, await fixtureConfig('tiny_vit'));
});

test('… unless a configuration beside it says otherwise: a same-model safetensors or config.json', async () => {
  const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
  const dir = mkdtempSync(path.join(tmp, 'beside-'));
  const file = path.join(dir, 'tiny_vit.state_dict.pt');
  await model.save(file, { format: 'pt' });
  await model.save(path.join(dir, 'tiny_vit.safetensors'));
  const withSibling = await loadModel(file);
  assert.equal(withSibling.source?.configSource, `inferred, ${path.join(dir, 'tiny_vit.safetensors')}`);
  await checkForward(withSibling, 'tiny_vit', '');

  const other = mkdtempSync(path.join(tmp, 'config-json-'));
  await model.save(path.join(other, 'weights.pt'), { format: 'pt' });
  writeFileSync(path.join(other, 'config.json'), JSON.stringify({ ...(await fixtureConfig('tiny_vit')), embed_dim: 99 }));
  await assert.rejects(loadModel(path.join(other, 'weights.pt')), /embedding width \(embed_dim\).*config\.json has embed_dim = 99.*shapes.*embed_dim = 32/s, 'a config that contradicts the shapes is an error');
  writeFileSync(path.join(other, 'config.json'), JSON.stringify(await fixtureConfig('tiny_vit')));
  assert.equal((await loadModel(path.join(other, 'weights.pt'))).config.transformer_heads, 4);
});

test('the visual-only torch.save state dict is refused as a partial model, naming the missing keys', async () => {
  await assert.rejects(loadModel(fixture('models', 'tiny_vit.visual.state_dict.pt')), /visual|positional_embedding|missing/);
});
