// End to end on caption data: a CLIP from random weights, trained by `clip-native train` on drawn
// images with compositional captions (two per image), goes from chance to well above it in held-out
// retrieval; `eval --json` on the saved weights gives the training run's numbers, and numpy, from
// `embed`'s features, gives the same metrics and loss.
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import type { RetrievalMetrics, WorstImage, WorstText } from '../src/eval/retrieval.js';
import { writeCompositionalSet } from './helpers/compositional.js';
import { referenceFromFiles } from './helpers/retrieval-reference.js';
import { scratchDir } from './helpers/scratch.js';
import { SMALL_MODEL } from './helpers/tiny-model.js';
import { cliEnv, runCli } from './helpers/tiny-run.js';

const TEST_IMAGES = 200;

test('caption retrieval: trained from random weights, R@1 rises far above chance; eval and numpy agree', { timeout: 5 * 60_000 }, async (t) => {
  const dir = scratchDir('clip-caption-e2e-');
  const env = cliEnv(dir);
  const set = await writeCompositionalSet(path.join(dir, 'data'), { train: 1800, test: TEST_IMAGES });
  const model = path.join(dir, 'tiny.json');
  await fs.writeFile(model, JSON.stringify(SMALL_MODEL));
  const out = path.join(dir, 'run');
  const args = ['train', '--data', set.csv, '--model', model, '--init', 'random', '--out', out, '--epochs', '8', '--batch-size', '64'];
  args.push('--optimizer', 'adamw', '--lr', '2e-3', '--weight-decay', '0.1', '--schedule', 'cosine', '--warmup', '20');
  args.push('--eval-every', '4', '--log-every', '100', '--device', 'cpu', '--json');
  const run = await runCli(args, env);
  assert.equal(run.code, 0, run.stderr);
  const evals = (JSON.parse(run.stdout) as { evals: Array<{ epoch: number; retrieval: RetrievalMetrics }> }).evals;
  assert.deepEqual(evals.map((e) => e.epoch), [0, 4, 8]);
  const [before, , after] = evals.map((e) => e.retrieval);
  // Chance: 2 of 400 captions per image, 1 of 200 images per caption.
  for (const r of [before!.imageToText.r1, before!.textToImage.r1]) assert.ok(r < 0.05, `untrained R@1 ${r} should be near chance (0.005)`);
  const meanR1 = (after!.imageToText.r1 + after!.textToImage.r1) / 2;
  assert.ok(meanR1 >= 0.15, `trained mean R@1 ${meanR1} should be far above chance 0.005\n${run.stderr}`);
  assert.ok(after!.loss < before!.loss, `validation loss ${after!.loss} should fall from ${before!.loss}`);

  // metrics.jsonl holds the same numbers; the best weights and the worst-ranked queries are written.
  const records = (await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const evalRecords = records.filter((r) => r.type === 'eval');
  assert.deepEqual(evalRecords.map((r) => r.retrieval), evals.map((e) => e.retrieval));
  assert.deepEqual(evalRecords.map((r) => [r.images, r.texts]), evals.map(() => [TEST_IMAGES, 2 * TEST_IMAGES]));
  assert.ok(existsSync(path.join(out, 'tiny_best.safetensors')));
  const worst = JSON.parse(await fs.readFile(path.join(out, 'retrieval-worst.json'), 'utf8')) as { epoch: number; imageToText: WorstImage[]; textToImage: WorstText[] };
  assert.equal(worst.epoch, 8);
  assert.equal(worst.imageToText.length, 12);
  assert.ok(worst.imageToText.every((w, i) => i === 0 || w.rank <= worst.imageToText[i - 1]!.rank));
  assert.equal(worst.textToImage[0]!.rank, Math.max(...worst.textToImage.map((w) => w.rank)));

  // The report: recall and loss curves per epoch, and the worst-ranked queries with thumbnails.
  const report = await runCli(['report', out], env);
  assert.equal(report.code, 0, report.stderr);
  const html = await fs.readFile(path.join(out, 'report.html'), 'utf8');
  for (const id of ['recall-i2t', 'recall-t2i', 'val-loss']) assert.match(html, new RegExp(`id="${id}"[^]*?<path class="series"`), id);
  assert.match(html, /Worst-ranked examples, epoch 8 \(test\)/);
  const thumbnails = html.match(/<img class="thumb" src="data:image\/jpeg;base64,/g) ?? [];
  assert.equal(thumbnails.length, 12 + 2 * 12, 'a thumbnail per worst image, and per caption its image and the one ranked first');
  assert.ok(!/<h2>Problems reading the run/.test(html), 'the run reads without problems');

  // `eval --json` on the last weights: the numbers of the run's last evaluation.
  const weights = path.join(out, 'tiny_epoch_8.safetensors');
  const evaluated = await runCli(['eval', '--data', set.csv, '--model', weights, '--device', 'cpu', '--json'], env);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const result = JSON.parse(evaluated.stdout) as { retrieval: RetrievalMetrics; images: number; texts: number };
  assert.deepEqual(result.retrieval, after);

  // numpy from `embed`'s features of the test images and captions, in the table's order.
  const rows = (await fs.readFile(set.csv, 'utf8')).trim().split('\n').slice(1).map((l) => l.split(',')).filter((r) => r[2] === 'test');
  const images = [...new Set(rows.map((r) => r[0]!))];
  await fs.writeFile(path.join(dir, 'images.txt'), images.map((i) => path.join(dir, 'data', i)).join('\n') + '\n');
  await fs.writeFile(path.join(dir, 'texts.txt'), rows.map((r) => r[1]).join('\n') + '\n');
  const embedded = path.join(dir, 'embedded');
  const embed = await runCli(['embed', '--model', weights, '--images', path.join(dir, 'images.txt'), '--texts', path.join(dir, 'texts.txt'), '--out', embedded, '--device', 'cpu'], env);
  assert.equal(embed.code, 0, embed.stderr);
  const caseFile = path.join(dir, 'case.json');
  await fs.writeFile(caseFile, JSON.stringify({ text_image: rows.map((r) => images.indexOf(r[0]!)), weights, batch: 32 }));
  const reference = await referenceFromFiles(path.join(embedded, 'image_embeddings.npy'), path.join(embedded, 'text_embeddings.npy'), caseFile);
  if ('skip' in reference) return t.skip(`numpy cross-check not run: ${reference.skip}`);
  for (const direction of ['imageToText', 'textToImage'] as const) {
    for (const [key, value] of Object.entries(reference.numpy[direction])) {
      assert.ok(Math.abs(result.retrieval[direction][key as keyof RetrievalMetrics['imageToText']] - value) <= 1e-12, `${direction}.${key}: ${result.retrieval[direction][key as 'r1']} vs numpy ${value}`);
    }
  }
  assert.ok(Math.abs(result.retrieval.loss - reference.numpy.loss) <= 1e-5 * reference.numpy.loss, `loss ${result.retrieval.loss} vs numpy ${reference.numpy.loss}`);
});
