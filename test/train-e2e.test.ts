// End to end on real data: from random weights, a small CLIP trained through the CLI on a
// Fashion-MNIST subset in the blog's layout reaches ≥ 70% zero-shot accuracy on its test split,
// and the evaluation shows the gain over the untrained model.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { exportFashionMnist } from '../src/data/fashion-mnist.js';
import { FASHION_MNIST_SKIP, fashionMnistPresent } from './helpers/fashion-mnist.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { SMALL_MODEL } from './helpers/tiny-model.js';

let tmp: string | undefined;
after(() => (tmp ? fs.rm(tmp, { recursive: true, force: true }) : undefined));

test('a from-scratch CLIP trained by `clip-native train` reaches ≥ 70% zero-shot on Fashion-MNIST', { timeout: 10 * 60_000 }, async (t) => {
  if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-e2e-'));
  const data = path.join(tmp, 'fashion');
  await exportFashionMnist({ out: data, trainPerClass: 400, testPerClass: 30, seed: 0 });
  const model = path.join(tmp, 'tiny-vit.json');
  await fs.writeFile(model, JSON.stringify(SMALL_MODEL));
  const out = path.join(tmp, 'run');
  const args = ['train', '--data', data, '--ext', 'png', '--model', model, '--init', 'random', '--out', out, '--epochs', '8', '--batch-size', '64'];
  args.push('--optimizer', 'adamw', '--lr', '2e-3', '--weight-decay', '0.1', '--schedule', 'cosine', '--warmup', '20');
  args.push('--templates', 'default', '--eval-every', '8', '--log-every', '20', '--device', 'cpu', '--json');
  const run = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz'), CLIP_NATIVE_CACHE: path.join(tmp, 'cache') },
  });
  assert.equal(run.status, 0, run.stderr);
  const summary = JSON.parse(run.stdout);
  assert.equal(summary.epochsCompleted, 8);
  const [before, afterTraining] = summary.evals as Array<{ epoch: number; top1: number }>;
  assert.equal(before!.epoch, 0);
  assert.equal(afterTraining!.epoch, 8);
  assert.ok(before!.top1 < 0.3, `untrained accuracy ${before!.top1} should be near chance`);
  assert.ok(afterTraining!.top1 >= 0.7, `trained accuracy ${afterTraining!.top1} < 0.70\n${run.stderr}`);
  // The same numbers are in metrics.jsonl, where `clip-native report` reads them.
  const lines = (await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const evals = lines.filter((l) => l.type === 'eval');
  assert.deepEqual(evals.map((e) => e.top1), [before!.top1, afterTraining!.top1]);
  assert.equal(evals[1].confusion.length, 10);
  assert.ok(existsSync(path.join(out, 'tiny-vit_best.safetensors')));
});
