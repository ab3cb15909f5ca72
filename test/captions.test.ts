// Several captions per image: how tables group them, which an epoch trains on, that splits keep an
// image's captions together, and that --captions all makes them each other's positives in the loss.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import sharp from 'sharp';

import { captionEpoch, captionsByImage, imageGroups } from '../src/data/captions.js';
import { loadDataset } from '../src/data/load-dataset.js';
import { evaluateRetrievalModel } from '../src/eval/retrieval.js';
import { loadModel } from '../src/model/model.js';
import { loadTokenizer } from '../src/text/tokenizer.js';
import { train } from '../src/train/loop.js';
import { writeCompositionalSet } from './helpers/compositional.js';
import { fixture } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';
import { TINY_MODEL } from './helpers/tiny-model.js';

const dir = scratchDir('clip-captions-');

async function table(name: string, text: string, images: string[]): Promise<string> {
  const folder = path.join(dir, name);
  await fs.mkdir(folder, { recursive: true });
  for (const image of images) await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } }).png().toFile(path.join(folder, image));
  const file = path.join(folder, name.endsWith('jsonl') ? 'list.jsonl' : 'list.csv');
  await fs.writeFile(file, text);
  return file;
}

describe('caption tables', () => {
  test('rows sharing an image and JSONL lists of captions are one image with several captions', async () => {
    const csv = await table('shared-csv', 'image,caption\na.png,one\nb.png,two\na.png,three\n', ['a.png', 'b.png']);
    const fromCsv = await loadDataset(csv);
    assert.deepEqual(fromCsv.samples.map((s) => [path.basename(s.image), s.caption, s.imageIndex]), [['a.png', 'one', 0], ['b.png', 'two', 1], ['a.png', 'three', 0]]);
    assert.deepEqual(captionsByImage(fromCsv).map((g) => g.map((s) => s.caption)), [['one', 'three'], ['two']]);
    const jsonl = await table(
      'list-jsonl',
      ['{"image": "a.png", "captions": ["one", "two"]}', '{"image": "b.png", "captions": "three"}', '{"image": "b.png", "captions": ["four", 5]}', '{"image": "a.png", "captions": []}'].join('\n'),
      ['a.png', 'b.png'],
    );
    const fromJsonl = await loadDataset(jsonl);
    assert.deepEqual(fromJsonl.samples.map((s) => [s.caption, s.imageIndex, s.source.line]), [['one', 0, 1], ['two', 0, 1], ['three', 1, 2]]);
    assert.deepEqual(
      fromJsonl.problems.map((p) => `${p.line}: ${p.message}`),
      ['3: "captions" item 1 must be a non-empty string, got 5; skipped', '4: "captions" is an empty list; skipped'],
    );
  });

  test('an image in both splits is refused, naming each row', async () => {
    const csv = await table('both-splits', 'image,caption,split\na.png,one,train\nb.png,two,test\na.png,three,test\nb.png,four,test\n', ['a.png', 'b.png']);
    await assert.rejects(loadDataset(csv, { split: 'train' }), (err: Error) => {
      assert.match(err.message, /1 row\(s\) put an image in both splits/);
      assert.match(err.message, /list\.csv:4: "a\.png" is in test here and in train on line 2/);
      return true;
    });
  });
});

describe('captions an epoch trains on', () => {
  test("'one': each image once, its caption a function of (seed, epoch, image); 'all': every row", async () => {
    const rows = ['image,caption'];
    const images = Array.from({ length: 40 }, (_, i) => `${i}.png`);
    for (const image of images) for (let k = 0; k < 3; k++) rows.push(`${image},caption ${k} of ${image}`);
    const dataset = await loadDataset(await table('epochs', rows.join('\n') + '\n', images));
    const epoch = (seed: number, e: number) => captionEpoch(dataset, 'one', seed, e).samples;
    const first = epoch(0, 0);
    assert.deepEqual(first.map((s) => s.imageIndex), images.map((_, i) => i));
    assert.deepEqual(epoch(0, 0), first, 'the same draw again (what a resume inside the epoch relies on)');
    const captionsOf = (samples: typeof first) => samples.map((s) => s.caption);
    assert.notDeepEqual(captionsOf(epoch(0, 1)), captionsOf(first), 'another epoch draws again');
    assert.notDeepEqual(captionsOf(epoch(1, 0)), captionsOf(first), 'another seed draws again');
    // Uniform over an image's captions: 30 epochs × 40 images draw each of the 3 about 400 times.
    const draws = Array.from({ length: 30 }, (_, e) => captionsOf(epoch(0, e))).flat();
    assert.equal(new Set(draws).size, 120, 'over epochs every caption comes up');
    for (let k = 0; k < 3; k++) {
      const count = draws.filter((c) => c!.startsWith(`caption ${k} `)).length;
      assert.ok(count > 330 && count < 470, `caption ${k} drawn ${count} times of 1200`);
    }
    assert.equal(captionEpoch(dataset, 'all', 0, 0), dataset);
    assert.deepEqual(Array.from(imageGroups(dataset.samples.slice(0, 5))), [0, 0, 0, 1, 1]);
  });

  test('--captions all: one step over every pair has the loss the retrieval evaluation computes (multi-positive targets)', { timeout: 120_000 }, async () => {
    const set = await writeCompositionalSet(path.join(dir, 'loss'), { train: 12, test: 2 });
    const model = path.join(dir, 'loss', 'tiny.json');
    await fs.writeFile(model, JSON.stringify(TINY_MODEL));
    const tokenizer = await loadTokenizer({ vocab: fixture('bpe_simple_vocab_16e6.txt.gz') });
    const cacheDir = path.join(dir, 'cache');
    // Learning rate 0: the one step leaves the weights as they were, and its loss is over every pair.
    // (An untrained text tower gives all captions nearly the same features, so this loss hardly
    // differs from the one without multi-positives: it checks the targets' form, not their effect.)
    const all = await train({ data: set.csv, model, init: 'random', out: path.join(dir, 'all'), epochs: 1, batchSize: 24, lr: 0, weightDecay: 0, captions: 'all', device: 'cpu', tokenizer, cacheDir });
    const trainSet = await loadDataset(set.csv, { split: 'train' });
    const weights = await loadModel(all.weights[0]!, { device: 'cpu' });
    const expected = await evaluateRetrievalModel(weights, trainSet, { batchSize: 24, tokenizer, cacheDir });
    weights.dispose();
    assert.equal(expected.texts, 24);
    const gap = Math.abs(all.epochLosses[0]! - expected.retrieval.loss) / expected.retrieval.loss;
    assert.ok(gap <= 1e-5, `training loss ${all.epochLosses[0]} vs the evaluation's ${expected.retrieval.loss}`);
  });
});
