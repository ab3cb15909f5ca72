// `clip-native demo` end to end: the installed executable, with no dataset, no vocabulary given, an
// empty model cache and the network off, so it takes the random-weights path every time.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { EXAMPLE_COLOURS, writeExampleSet } from '../src/demo/example-set.js';
import { fixture } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';
import { startCli } from './helpers/tiny-run.js';

const tmp = scratchDir('clip-demo-');

/** No vocabulary path, an empty cache, never the network: what a fresh installation without weights has. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CLIP_NATIVE_CACHE: path.join(tmp, 'empty-cache'), CLIP_NATIVE_OFFLINE: '1', HF_HUB_OFFLINE: '1' };
  delete env.CLIP_NATIVE_VOCAB;
  return env;
}

async function treeDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const files = (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  for (const file of files.map((e) => path.join(e.parentPath, e.name)).sort()) hash.update(path.relative(dir, file)).update(readFileSync(file));
  return hash.digest('hex');
}

describe('the example set', () => {
  test('is the same bytes every time, balanced, in the blog layout', async () => {
    const first = await writeExampleSet(path.join(tmp, 'set-a'), { trainPerClass: 3, testPerClass: 2 });
    const second = await writeExampleSet(path.join(tmp, 'set-b'), { trainPerClass: 3, testPerClass: 2 });
    assert.equal(await treeDigest(first.dir), await treeDigest(second.dir));
    const labels = Object.keys(EXAMPLE_COLOURS);
    assert.deepEqual(first.labels, labels);
    const train = (await fs.readFile(path.join(first.dir, 'meta', 'train.txt'), 'utf8')).trim().split('\n');
    const test_ = (await fs.readFile(path.join(first.dir, 'meta', 'test.txt'), 'utf8')).trim().split('\n');
    assert.equal(train.length, 3 * labels.length);
    assert.equal(test_.length, 2 * labels.length);
    for (const line of [...train, ...test_]) assert.ok(existsSync(path.join(first.dir, 'images', `${line}.png`)), line);
    const other = await writeExampleSet(path.join(tmp, 'set-c'), { trainPerClass: 3, testPerClass: 2, seed: 1 });
    assert.notEqual(await treeDigest(other.dir), await treeDigest(first.dir), 'the seed changes the images');
  });
});

describe('clip-native demo', () => {
  test('trains from random weights when none are cached, says so, evaluates before and after and writes the report, in under 2 minutes', async () => {
    const out = path.join(tmp, 'demo');
    const result = await startCli(['demo', '--out', out, '--device', 'cpu'], offlineEnv()).done;
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.seconds < 120, `took ${result.seconds.toFixed(0)} s`);
    assert.match(result.stderr, /no pretrained weights cached .* small CLIP from random weights/);
    assert.match(result.stderr, /epoch 1 batch \d+\/\d+ step \d+: loss/, 'progress on a non-terminal: one line per logged step');
    const summary = /zero-shot top-1 on (\d+) test images ([\d.]+) % before, ([\d.]+) % after\nreport: (.+)\n/.exec(result.stdout);
    assert.ok(summary, result.stdout);
    const [, testImages, before, after, report] = summary;
    assert.equal(Number(testImages), 60);
    // Six balanced classes: a random start is near chance (1/6); the colours are learnt.
    assert.ok(Number(before) < 50, `before ${before} %`);
    assert.ok(Number(after) >= 80 && Number(after) > Number(before), `after ${after} % (before ${before} %)`);
    assert.equal(report, path.join(out, 'run', 'report.html'));
    const html = readFileSync(report!, 'utf8');
    assert.match(html, /^<!doctype html>/i);
    const metrics = readFileSync(path.join(out, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; epoch: number; top1?: number });
    const evals = metrics.filter((m) => m.type === 'eval');
    assert.deepEqual([evals[0]!.epoch, (evals.at(-1)!.top1! * 100).toFixed(1)], [0, Number(after).toFixed(1)], 'the printed accuracy is the run\'s last evaluation');
    assert.equal(existsSync(path.join(tmp, 'empty-cache', 'bpe_simple_vocab_16e6.txt.gz')), false, 'the vocabulary came from the package');

    const again = await startCli(['demo', '--out', out, '--device', 'cpu', '--epochs', '1'], offlineEnv()).done;
    assert.equal(again.code, 0, `a second demo replaces the first one's folder: ${again.stderr}`);
  });

  test('with weights given, fine-tunes them (the path taken when pretrained weights are cached): fewer images, accuracy before and after', async () => {
    const out = path.join(tmp, 'demo-weights');
    const weights = fixture('models', 'tiny_vit.safetensors');
    const result = await startCli(['demo', '--out', out, '--device', 'cpu', '--model', weights], offlineEnv()).done;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /model: .*tiny_vit\.safetensors as asked/);
    assert.match(result.stdout, new RegExp(`fine-tuned ${weights.replace(/[.]/g, '\\.')} on 72 images: zero-shot top-1 on 36 test images [\\d.]+ % before, [\\d.]+ % after`));
    const config = JSON.parse(readFileSync(path.join(out, 'run', 'config.json'), 'utf8')) as { init: string; epochs: number; lr: number };
    assert.deepEqual([config.init, config.epochs, config.lr], ['pretrained', 2, 1e-5]);
  });

  test('refuses a folder it did not write', async () => {
    const out = path.join(tmp, 'not-a-demo');
    await fs.mkdir(out, { recursive: true });
    await fs.writeFile(path.join(out, 'thesis.tex'), 'precious');
    const result = await startCli(['demo', '--out', out], offlineEnv()).done;
    assert.equal(result.code, 1);
    assert.match(result.stderr, /is not empty and was not written by clip-native demo/);
    assert.equal(readFileSync(path.join(out, 'thesis.tex'), 'utf8'), 'precious');
  });
});
