// An evaluation never reports numbers computed from NaN or infinite model outputs: NaN ranks like any
// number in a sort, so before this check an all-NaN model scored "top-1" on class 0. Finite weights
// that overflow float32 in the forward pass stand in for NaN weights (which the loader refuses).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

import { loadDataset } from '../../src/data/load-dataset.js';
import type { Dataset } from '../../src/data/dataset.js';
import { classify } from '../../src/eval/classify.js';
import { embedImages } from '../../src/eval/embed.js';
import { assertFinite, NonFiniteOutputError, nonFiniteRows } from '../../src/eval/finite.js';
import { evaluateModel } from '../../src/eval/zero-shot.js';
import { loadModel, type ClipModel } from '../../src/model/model.js';
import { loadTokenizer, type ClipTokenizer } from '../../src/text/tokenizer.js';
import { fixture, repoRoot } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const tmp = scratchDir('clip-eval-nonfinite-');
const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const MODEL = fixture('models', 'tiny_vit.safetensors');
const env = { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz') };

/** `root/{train,test}/{coffee,rocket}/` with two images each. */
function labelledFolder(): string {
  const root = path.join(tmp, 'data');
  for (const split of ['train', 'test']) {
    for (const label of ['coffee', 'rocket']) {
      mkdirSync(path.join(root, split, label), { recursive: true });
      for (const ext of ['jpg', 'png']) copyFileSync(fixture('images', `${label}.${ext}`), path.join(root, split, label, `${label}.${ext}`));
    }
  }
  return root;
}

type StateDict = Awaited<ReturnType<ClipModel['stateDict']>>;

/** The tiny model with some tensors replaced: `fill` gives each named tensor one value. */
async function modelWith(fill: Record<string, number>, file?: string): Promise<ClipModel> {
  const model = await loadModel(MODEL);
  const state: StateDict = (await model.stateDict()).map(({ name, tensor }) =>
    name in fill ? { name, tensor: { data: new Float32Array(tensor.data.length).fill(fill[name]!), shape: tensor.shape } } : { name, tensor },
  );
  for (const name of Object.keys(fill)) assert.ok(state.some((e) => e.name === name), `the tiny model has ${name}`);
  await model.loadStateDict(state);
  if (file) await model.save(file);
  return model;
}

/** LayerNorm → constant ones, then a projection of 3e38s: every feature overflows float32 to +Inf (finite weights). */
const IMAGE_OVERFLOW = { 'visual.ln_post.weight': 0, 'visual.ln_post.bias': 1, 'visual.proj': 3e38 };
const TEXT_OVERFLOW = { 'ln_final.weight': 0, 'ln_final.bias': 1, text_projection: 3e38 };

let tokenizer: ClipTokenizer;
let data: string;
let dataset: Dataset;
const models: ClipModel[] = [];
before(async () => {
  tokenizer = await loadTokenizer({ vocab: fixture('bpe_simple_vocab_16e6.txt.gz') });
  data = labelledFolder();
  dataset = await loadDataset(data, { split: 'test' });
});
after(() => {
  for (const m of models) m.dispose();
});
async function tracked(model: Promise<ClipModel>): Promise<ClipModel> {
  const m = await model;
  models.push(m);
  return m;
}

describe('the check itself', () => {
  test('rows with NaN or ±Inf are counted and named, with the kinds found', () => {
    const m = { data: Float32Array.from([1, 2, NaN, 4, Infinity, 6, 7, 8, -Infinity, NaN]), shape: [5, 2] as [number, number] };
    assert.deepEqual(nonFiniteRows(m), { rows: [1, 2, 4], kinds: ['NaN', 'Inf'] });
    assert.throws(
      () => assertFinite(m, { output: 'image features', rows: 'images', names: ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg'], context: '(images 1–5 of 9)' }),
      (err: unknown) => {
        assert.ok(err instanceof NonFiniteOutputError);
        assert.equal(err.rows, 3);
        assert.deepEqual(err.kinds, ['NaN', 'Inf']);
        assert.equal(
          err.message,
          "the model's image features are not finite (NaN, Inf) for 3 of 5 images (images 1–5 of 9), e.g. \"b.jpg\", \"c.jpg\", \"e.jpg\": " +
            'the weights may hold NaN/Inf or values that overflow (fp16 overflows first: try --precision fp32); no scores were computed from them',
        );
        return true;
      },
    );
    assertFinite({ data: Float32Array.from([0, -0, 3.4e38, -1e-45]), shape: [2, 2] }, { output: 'x', rows: 'rows' });
  });
});

describe('evaluation, prediction and embedding refuse non-finite outputs', () => {
  test('the unmodified tiny model evaluates (the fixture dataset is fine)', async () => {
    const model = await tracked(loadModel(MODEL));
    const result = await evaluateModel(model, dataset, { tokenizer, cache: false });
    assert.equal(result.n, 4);
    assert.ok(Number.isFinite(result.top1));
  });

  test('image features that overflow: evaluateModel throws, naming the images, instead of an accuracy', async () => {
    const model = await tracked(modelWith(IMAGE_OVERFLOW));
    await assert.rejects(evaluateModel(model, dataset, { tokenizer, cache: false, batchSize: 4 }), (err: unknown) => {
      assert.ok(err instanceof NonFiniteOutputError, String(err));
      assert.match(err.message, /^the model's image features are not finite \(Inf\) for 4 of 4 images \(images 1–4 of 4\), e\.g\. ".*(coffee|rocket)\.(jpg|png)"/);
      assert.match(err.message, /the weights may hold NaN\/Inf/);
      return true;
    });
    await assert.rejects(embedImages([fixture('images', 'coffee.jpg')], { model, cache: false }), /the model's image features are not finite \(Inf\) for 1 of 1 images/);
  });

  test('text features that overflow: the classifier is refused before any image is scored', async () => {
    const model = await tracked(modelWith(TEXT_OVERFLOW));
    let scored = 0;
    await assert.rejects(
      evaluateModel(model, dataset, { tokenizer, cache: false, onProgress: () => scored++ }),
      /^NonFiniteOutputError: the model's text features are not finite \(Inf\) for 2 of 2 texts \(texts 1–2 of 2\), e\.g\. "a photo of a coffee\.", "a photo of a rocket\."/,
    );
    assert.equal(scored, 0);
  });

  test('a logit scale that overflows float32 logits: classify (predict) refuses them', async () => {
    const model = await tracked(modelWith({ logit_scale: 100 }));
    await assert.rejects(
      classify([fixture('images', 'coffee.jpg')], ['coffee', 'rocket'], { model, tokenizer }),
      /the model's logits are not finite \(Inf\) for 1 of 1 images, e\.g\. ".*coffee\.jpg"/,
    );
    // 1e38 as float32 (9.9999997e37).
    const infinite = await tracked(modelWith({ logit_scale: 1e38 }));
    await assert.rejects(
      classify([fixture('images', 'coffee.jpg')], ['coffee', 'rocket'], { model: infinite, tokenizer }),
      /the model's logit scale exp\(logit_scale\) is not finite \(Infinity, logit_scale = (1\.0|9\.9)\d*e\+3[78]\)/,
    );
  });

  test('`clip-native eval` and `predict` exit 1 with the message, and print no scores', async () => {
    const imageOverflow = path.join(tmp, 'image-overflow.safetensors');
    (await modelWith(IMAGE_OVERFLOW, imageOverflow)).dispose();
    const scaleOverflow = path.join(tmp, 'scale-overflow.safetensors');
    (await modelWith({ logit_scale: 100 }, scaleOverflow)).dispose();
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [cli, ...args], { env, encoding: 'utf8' }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
    for (const json of [[], ['--json']]) {
      const evaluated = await run(['eval', '--data', data, '--model', imageOverflow, '--no-cache', ...json]);
      assert.equal(evaluated.code, 1, evaluated.stderr);
      assert.equal(evaluated.stdout, '', 'no accuracy printed');
      assert.match(evaluated.stderr, /^clip-native: the model's image features are not finite \(Inf\) for 4 of 4 images/m);
    }
    const predicted = await run(['predict', fixture('images', 'coffee.jpg'), '--labels', 'coffee,rocket', '--model', scaleOverflow]);
    assert.equal(predicted.code, 1, predicted.stderr);
    assert.equal(predicted.stdout, '');
    assert.match(predicted.stderr, /^clip-native: the model's logits are not finite \(Inf\)/m);
  });
});
