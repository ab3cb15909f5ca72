import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { preprocessImage } from '../src/data/preprocess.js';
import { classify } from '../src/eval/classify.js';
import { loadModel, type ClipModel } from '../src/model/model.js';
import { loadTokenizer, type ClipTokenizer } from '../src/text/tokenizer.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

const MODEL = fixture('models', 'tiny_vit.safetensors');
const IMAGES = ['astronaut.jpg', 'chelsea.png', 'coffee.jpg'].map((f) => fixture('images', f));
const LABELS = ['astronaut', 'cat', 'coffee cup', 'rocket', 'dog', 'tree'];

let model: ClipModel;
let tokenizer: ClipTokenizer;
const tmp = scratchDir('clip-predict-');

before(async () => {
  tokenizer = await loadTokenizer({ vocab: fixture('bpe_simple_vocab_16e6.txt.gz') });
  model = await loadModel(MODEL);
});
after(async () => {
  model?.dispose();
});

const runCli = (args: string[]) =>
  promisify(execFile)(process.execPath, [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), ...args], {
    env: { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz') },
  });

describe('classify', () => {
  test('logits are the model forward pass logits; probabilities are their softmax, sum to 1 and rank as the logits do', async () => {
    const predictions = await classify(IMAGES, LABELS, { model, templates: 'a photo of a {}.', tokenizer });
    // Independent: CLIP.forward on the same images and prompts (one template, so no ensembling).
    const resolution = model.config.image_resolution;
    const pixels = new Float32Array(IMAGES.length * 3 * resolution * resolution);
    for (const [i, file] of IMAGES.entries()) pixels.set((await preprocessImage(file, { resolution })).data, i * 3 * resolution * resolution);
    const forward = await model.forward({ data: pixels, shape: [IMAGES.length, 3, resolution, resolution] }, tokenizer.tokenize(LABELS.map((l) => `a photo of a ${l}.`)));

    assert.equal(predictions.length, IMAGES.length);
    for (const [i, prediction] of predictions.entries()) {
      assert.equal(prediction.image, IMAGES[i]);
      assert.equal(prediction.ranking.length, LABELS.length);
      assert.deepEqual(new Set(prediction.ranking.map((r) => r.label)), new Set(LABELS));
      const sum = prediction.ranking.reduce((s, r) => s + r.probability, 0);
      assert.ok(Math.abs(sum - 1) < 1e-9, `probabilities sum to ${sum}`);
      const expectedLogits = LABELS.map((_, c) => forward.logitsPerImage.data[i * LABELS.length + c]!);
      for (const r of prediction.ranking) {
        const expected = expectedLogits[LABELS.indexOf(r.label)]!;
        assert.ok(Math.abs(r.logit - expected) < 1e-3 * Math.max(1, Math.abs(expected)), `${r.label}: logit ${r.logit} vs forward ${expected}`);
      }
      // Softmax of the forward logits, computed here.
      const max = Math.max(...expectedLogits);
      const exps = expectedLogits.map((l) => Math.exp(l - max));
      const total = exps.reduce((a, b) => a + b, 0);
      for (const r of prediction.ranking) assert.ok(Math.abs(r.probability - exps[LABELS.indexOf(r.label)]! / total) < 1e-4);
      for (let k = 1; k < prediction.ranking.length; k++) {
        assert.ok(prediction.ranking[k - 1]!.logit >= prediction.ranking[k]!.logit, 'ranked by logit');
        assert.ok(prediction.ranking[k - 1]!.probability >= prediction.ranking[k]!.probability, 'ranked by probability');
      }
    }
  });

  test('top k keeps the k best; an image buffer gives the same answer as its path', async () => {
    const full = await classify([IMAGES[1]!], LABELS, { model, tokenizer });
    const top = await classify([await fs.readFile(IMAGES[1]!)], LABELS, { model, tokenizer, top: 2 });
    assert.equal(top[0]!.image, 'buffer #0');
    assert.deepEqual(top[0]!.ranking, full[0]!.ranking.slice(0, 2));
  });

  test('refuses duplicate labels, no labels, and a bad top', async () => {
    await assert.rejects(classify(IMAGES, ['cat', 'dog', 'cat'], { model, tokenizer }), /label "cat" is given twice/);
    await assert.rejects(classify(IMAGES, [], { model, tokenizer }), /no labels/);
    await assert.rejects(classify(IMAGES, LABELS, { model, tokenizer, top: 0 }), /top must be a positive integer/);
  });
});

describe('clip-native predict', () => {
  test('--json with --labels and with --labels-file agree with classify()', async () => {
    const direct = await classify(IMAGES.slice(0, 2), LABELS, { model, tokenizer, top: 3 });
    const { stdout } = await runCli(['predict', ...IMAGES.slice(0, 2), '--labels', LABELS.join(','), '--model', MODEL, '--top', '3', '--json']);
    const printed = JSON.parse(stdout) as typeof direct;
    assert.deepEqual(printed.map((p) => p.ranking.map((r) => r.label)), direct.map((p) => p.ranking.map((r) => r.label)));
    printed.forEach((p, i) => p.ranking.forEach((r, k) => assert.ok(Math.abs(r.probability - direct[i]!.ranking[k]!.probability) < 1e-6)));

    const labelsFile = path.join(tmp, 'labels.txt');
    await fs.writeFile(labelsFile, LABELS.join('\n') + '\n\n');
    const table = await runCli(['predict', IMAGES[0]!, '--labels-file', labelsFile, '--model', MODEL, '--top', '3']);
    assert.match(table.stdout, new RegExp(`^${IMAGES[0]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\n  1\\.  ${direct[0]!.ranking[0]!.label}`));
    assert.equal(table.stdout.trim().split('\n').length, 4);
  });

  test('both --labels and --labels-file is an error that names them', async () => {
    await assert.rejects(runCli(['predict', IMAGES[0]!, '--labels', 'a,b', '--labels-file', 'x.txt', '--model', MODEL]), (err: { stderr: string; code: number }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /exactly one of --labels a,b,c and --labels-file/);
      return true;
    });
  });
});
