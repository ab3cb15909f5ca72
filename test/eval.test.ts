import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { loadDataset } from '../src/data/load-dataset.js';
import type { Dataset } from '../src/data/dataset.js';
import { exportFashionMnist } from '../src/data/fashion-mnist.js';
import { preprocessImage } from '../src/data/preprocess.js';
import { zeroShotClassifier } from '../src/eval/classifier.js';
import { evaluate, evaluateModel } from '../src/eval/zero-shot.js';
import { loadModel, type ClipModel } from '../src/model/model.js';
import { labelToPrompt } from '../src/text/prompts.js';
import { loadTokenizer, type ClipTokenizer } from '../src/text/tokenizer.js';
import { FASHION_MNIST_SKIP, fashionMnistPresent } from './helpers/fashion-mnist.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

const MODEL = fixture('models', 'tiny_vit.safetensors');
const TEMPLATES = ['a photo of a {}.', 'a blurry photo of a {}.', 'a sketch of the {}.'];

const tmp = scratchDir('clip-eval-');
let data: string;
let dataset: Dataset;
let model: ClipModel;
let tokenizer: ClipTokenizer;

before(async () => {
  tokenizer = await loadTokenizer({ vocab: fixture('bpe_simple_vocab_16e6.txt.gz') });
  model = await loadModel(MODEL);
  if (fashionMnistPresent) {
    data = path.join(tmp, 'fm');
    await exportFashionMnist({ out: data, trainPerClass: 1, testPerClass: 5, seed: 3 });
    dataset = await loadDataset(data, { split: 'test', ext: 'png' });
  }
});
after(async () => {
  model?.dispose();
});

// --- An independent zero-shot computation: plain loops over encodeImage / encodeText outputs. ---

function unit(v: ArrayLike<number>): number[] {
  const norm = Math.hypot(...Array.from(v));
  return Array.from(v, (x) => x / norm);
}

async function referenceClassEmbeddings(classes: string[], templates: string[]): Promise<number[][]> {
  const rows: number[][] = [];
  for (const label of classes) {
    const tokens = tokenizer.tokenize(templates.map((t) => labelToPrompt(label, t)));
    const out = await model.encodeText(tokens);
    const dim = out.shape[1]!;
    const mean = new Array<number>(dim).fill(0);
    for (let t = 0; t < templates.length; t++) unit(out.data.subarray(t * dim, (t + 1) * dim)).forEach((x, k) => (mean[k]! += x / templates.length));
    rows.push(unit(mean));
  }
  return rows;
}

async function referenceMetrics(ds: Dataset, templates: string[]) {
  const classEmb = await referenceClassEmbeddings(ds.classes, templates);
  const resolution = model.config.image_resolution;
  const confusion = ds.classes.map(() => new Array<number>(ds.classes.length).fill(0));
  let top5 = 0;
  for (const sample of ds.samples) {
    const image = await preprocessImage(sample.image, { resolution });
    const feature = unit((await model.encodeImage({ data: image.data, shape: [1, 3, resolution, resolution] })).data);
    const logits = classEmb.map((row) => 100 * row.reduce((s, x, k) => s + x * feature[k]!, 0));
    const order = logits.map((_, i) => i).sort((a, b) => logits[b]! - logits[a]!);
    confusion[sample.labelIndex!]![order[0]!]!++;
    if (order.slice(0, Math.min(5, ds.classes.length)).includes(sample.labelIndex!)) top5++;
  }
  const correct = confusion.reduce((s, row, i) => s + row[i]!, 0);
  return { top1: correct / ds.samples.length, top5: top5 / ds.samples.length, confusion };
}

describe('zero-shot evaluation on a Fashion-MNIST subset', () => {
  test('evaluate() from a dataset folder and a weight file agrees with an independent computation', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const result = await evaluate({ data, dataOptions: { ext: 'png' }, model: MODEL, templates: TEMPLATES, batchSize: 16, tokenizer, cache: false });
    assert.ok(!('retrieval' in result), 'a labelled dataset gets zero-shot metrics');
    const expected = await referenceMetrics(dataset, TEMPLATES);
    assert.equal(result.n, 50);
    assert.equal(result.classes.length, 10);
    assert.deepEqual(result.confusion, expected.confusion);
    assert.equal(result.top1, expected.top1);
    assert.equal(result.top5, expected.top5);
    assert.equal(result.topK, 5);
    assert.deepEqual(result.templates, TEMPLATES);
    for (const [i, name] of result.classes.entries()) {
      assert.equal(result.perClass[name]!.n, 5, name);
      assert.equal(result.perClass[name]!.accuracy, expected.confusion[i]![i]! / 5, name);
    }
    // A random tiny model is near chance; what matters is that the numbers are the true ones.
    assert.ok(result.top5 >= result.top1);
  });

  test('batch size does not change the result; progress reaches the total', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const seen: number[] = [];
    const a = await evaluateModel(model, dataset, { templates: 'default', batchSize: 7, tokenizer, cache: false, onProgress: (p) => seen.push(p.done) });
    const b = await evaluateModel(model, dataset, { templates: 'default', batchSize: 50, tokenizer, cache: false });
    assert.deepEqual(a.confusion, b.confusion);
    assert.deepEqual(seen, [7, 14, 21, 28, 35, 42, 49, 50]);
    assert.deepEqual(a.templates, ['a photo of a {label}.']);
  });

  test('with fewer than 5 classes top-5 is top-k over all classes (always 1)', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const classes = dataset.classes.slice(0, 3);
    const small: Dataset = { ...dataset, classes, samples: dataset.samples.filter((s) => s.labelIndex! < 3) };
    const result = await evaluateModel(model, small, { tokenizer, cache: false });
    assert.equal(result.topK, 3);
    assert.equal(result.top5, 1);
    assert.equal(result.n, 15);
    const expected = await referenceMetrics(small, ['a photo of a {label}.']);
    assert.deepEqual(result.confusion, expected.confusion);
  });

  test('evaluateModel leaves a training model in training mode, and honours an abort signal', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    model.train();
    await evaluateModel(model, dataset, { tokenizer, cache: false, batchSize: 50 });
    assert.equal(model.training, true);
    model.eval();
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(evaluateModel(model, dataset, { tokenizer, cache: false, signal: controller.signal }), { name: 'AbortError' });
  });

  test('`clip-native eval --json` prints the same metrics', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [cli, 'eval', '--data', data, '--ext', 'png', '--model', MODEL, '--templates', 'default', '--no-cache', '--json'],
      { env: { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz') } },
    );
    const printed = JSON.parse(stdout) as { top1: number; top5: number; perClass: object; confusion: number[][] };
    const direct = await evaluateModel(model, dataset, { tokenizer, cache: false });
    assert.equal(printed.top1, direct.top1);
    assert.equal(printed.top5, direct.top5);
    assert.deepEqual(printed.confusion, direct.confusion);
    assert.deepEqual(printed.perClass, direct.perClass);
  });
});

describe('zero-shot classifier', () => {
  test('rows are unit vectors; one template gives the normalised prompt embedding', async () => {
    const classes = ['coat', 'golden_retriever'];
    const single = await zeroShotClassifier(model, classes, 'a photo of a {}.', tokenizer);
    assert.deepEqual(single.shape, [2, model.config.embed_dim]);
    const direct = await model.encodeText(tokenizer.tokenize(['a photo of a coat.', 'a photo of a golden retriever.']));
    const dim = single.shape[1];
    for (let r = 0; r < 2; r++) {
      const expected = unit(direct.data.subarray(r * dim, (r + 1) * dim));
      const row = Array.from(single.data.subarray(r * dim, (r + 1) * dim));
      row.forEach((x, k) => assert.ok(Math.abs(x - expected[k]!) < 1e-6, `row ${r} col ${k}: ${x} vs ${expected[k]}`));
    }
    const ensemble = await zeroShotClassifier(model, classes, 'openai-imagenet', tokenizer);
    for (let r = 0; r < 2; r++) assert.ok(Math.abs(Math.hypot(...ensemble.data.subarray(r * dim, (r + 1) * dim)) - 1) < 1e-5);
    assert.notDeepEqual(Array.from(ensemble.data), Array.from(single.data));
  });

  test('an ensemble averages normalised prompt embeddings and renormalises (OpenAI\'s recipe)', async () => {
    const classes = ['coat', 'ankle_boot', 'bag'];
    const ensemble = await zeroShotClassifier(model, classes, TEMPLATES, tokenizer, { batchSize: 4 });
    const expected = await referenceClassEmbeddings(classes, TEMPLATES);
    const dim = ensemble.shape[1];
    expected.forEach((row, r) => row.forEach((x, k) => assert.ok(Math.abs(ensemble.data[r * dim + k]! - x) < 1e-6, `class ${r} col ${k}: ${ensemble.data[r * dim + k]} vs ${x}`)));
  });

  test('a captions dataset is refused', async () => {
    const captions: Dataset = { root: '/x/captions.csv', format: 'csv', kind: 'captions', classes: [], samples: [], problems: [] };
    await assert.rejects(evaluateModel(model, captions, { tokenizer }), /captions\.csv: zero-shot evaluation needs a dataset with class labels/);
  });
});
