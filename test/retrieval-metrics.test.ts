// Retrieval metrics (src/eval/retrieval-metrics.ts) against independent computations: numpy with a
// stable argsort (COCO style, several captions per image, exact ties) and open_clip's own
// get_clip_metrics (one caption per image), and blocked scoring against one whole block.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import type { Matrix } from '../src/eval/matrix.js';
import { normalizeRows } from '../src/eval/matrix.js';
import { contrastiveLoss, rankMetrics, retrievalRanks, type RankMetrics } from '../src/eval/retrieval-metrics.js';
import { createRng } from '../src/util/prng.js';
import { referenceMetrics } from './helpers/retrieval-reference.js';
import { scratchDir } from './helpers/scratch.js';

const dir = scratchDir('clip-retrieval-metrics-');

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const rng = createRng(seed);
  const data = Float32Array.from({ length: rows * cols }, () => rng.next() * 2 - 1);
  return normalizeRows({ data, shape: [rows, cols] });
}

function assertMetricsClose(actual: RankMetrics, expected: RankMetrics, what: string): void {
  for (const key of ['r1', 'r5', 'r10', 'meanRank', 'medianRank'] as const) {
    assert.ok(Math.abs(actual[key] - expected[key]) <= 1e-12, `${what}.${key}: ${actual[key]} vs ${expected[key]}`);
  }
}

/** 1 to 3 captions for each of `n` images: text t shows image textImage[t]. */
function captionsPerImage(n: number, seed: number): Int32Array {
  const rng = createRng(seed);
  return Int32Array.from(Array.from({ length: n }, (_, i) => Array<number>(1 + rng.nextInt(3)).fill(i)).flat());
}

describe('retrieval metrics', () => {
  test('several captions per image: positions, metrics and loss are numpy\'s; blocks change nothing', async (t) => {
    const n = 150;
    const textImage = captionsPerImage(n, 7);
    const images = randomMatrix(n, 16, 1);
    const texts = randomMatrix(textImage.length, 16, 2);
    const whole = await retrievalRanks(images, texts, textImage);
    const blocked = await retrievalRanks(images, texts, textImage, 50);
    assert.deepEqual(blocked, whole);
    const loss = contrastiveLoss(images, texts, textImage, 100, 32);
    const reference = await referenceMetrics(path.join(dir, 'multi'), images, texts, textImage, { scale: 100, batch: 32 });
    if ('skip' in reference) return t.skip(`numpy reference unavailable: ${reference.skip}`);
    assert.deepEqual(Array.from(whole.imageToText), reference.numpy.positions.imageToText);
    assert.deepEqual(Array.from(whole.textToImage), reference.numpy.positions.textToImage);
    assertMetricsClose(rankMetrics(whole.imageToText), reference.numpy.imageToText, 'imageToText');
    assertMetricsClose(rankMetrics(whole.textToImage), reference.numpy.textToImage, 'textToImage');
    // The reference normalises the float32 features again, which moves them by an ulp or so.
    assert.ok(Math.abs(loss - reference.numpy.loss) <= 1e-6 * reference.numpy.loss, `loss ${loss} vs numpy ${reference.numpy.loss}`);
  });

  test('ties: an equal score counts before the target when its index is lower (numpy\'s stable argsort)', async (t) => {
    // Small integer features: every score is exact, so ties are real and the same in any product.
    const n = 60;
    const textImage = captionsPerImage(n, 8);
    const rng = createRng(9);
    const integers = (rows: number): Matrix => ({ data: Float32Array.from({ length: rows * 3 }, () => rng.nextInt(4) - 1), shape: [rows, 3] });
    const images = integers(n);
    const texts = integers(textImage.length);
    const ranks = await retrievalRanks(images, texts, textImage, 40);
    const reference = await referenceMetrics(path.join(dir, 'ties'), images, texts, textImage, { normalize: false });
    if ('skip' in reference) return t.skip(`numpy reference unavailable: ${reference.skip}`);
    assert.deepEqual(Array.from(ranks.imageToText), reference.numpy.positions.imageToText);
    assert.deepEqual(Array.from(ranks.textToImage), reference.numpy.positions.textToImage);
    // The case is one of ties: many texts have an image of a lower index scoring exactly as their own.
    const dot = (a: Matrix, i: number, b: Matrix, j: number) => a.data[i * 3]! * b.data[j * 3]! + a.data[i * 3 + 1]! * b.data[j * 3 + 1]! + a.data[i * 3 + 2]! * b.data[j * 3 + 2]!;
    const tiedEarlier = Array.from(textImage.keys()).filter((t) => {
      const own = dot(texts, t, images, textImage[t]!);
      return Array.from({ length: textImage[t]! }, (_, i) => i).some((i) => dot(texts, t, images, i) === own);
    });
    assert.ok(tiedEarlier.length >= 10, `${tiedEarlier.length} texts with a tie before their image`);
  });

  test('one caption per image: the metrics are open_clip get_clip_metrics\'', async (t) => {
    const n = 200;
    const images = randomMatrix(n, 24, 3);
    const texts = randomMatrix(n, 24, 4);
    // Related pairs, so the ranks spread over the whole range rather than sitting near n/2.
    for (let i = 0; i < n * 24; i++) texts.data[i] = texts.data[i]! * 0.6 + images.data[i]! * (i % 3 === 0 ? 1 : 0.2);
    const related = normalizeRows(texts);
    const textImage = Int32Array.from({ length: n }, (_, i) => i);
    const ranks = await retrievalRanks(images, related, textImage, 1000);
    const reference = await referenceMetrics(path.join(dir, 'single'), images, related, textImage);
    if ('skip' in reference) return t.skip(`numpy reference unavailable: ${reference.skip}`);
    if (!reference.open_clip) return t.skip(`open_clip reference unavailable: ${reference.open_clip_skip}`);
    assertMetricsClose(rankMetrics(ranks.imageToText), reference.open_clip.imageToText, 'imageToText');
    assertMetricsClose(rankMetrics(ranks.textToImage), reference.open_clip.textToImage, 'textToImage');
    assert.ok(reference.open_clip.imageToText.r1 > 0 && reference.open_clip.imageToText.r1 < 1, 'a case where ranks vary');
  });

  test('rankMetrics: R@k, mean rank and median rank (floor of the median, plus one) of known positions', () => {
    assert.deepEqual(rankMetrics([0, 0, 4, 9, 10, 3]), { r1: 2 / 6, r5: 4 / 6, r10: 5 / 6, meanRank: 26 / 6 + 1, medianRank: Math.floor(3.5) + 1 });
    assert.throws(() => rankMetrics([]), /no queries/);
  });

  test('bad inputs are refused naming what is wrong', async () => {
    const images = randomMatrix(3, 4, 5);
    const texts = randomMatrix(3, 4, 6);
    await assert.rejects(retrievalRanks(images, texts, Int32Array.of(0, 1, 1)), /image 2 has no caption/);
    await assert.rejects(retrievalRanks(images, texts, Int32Array.of(0, 1, 5)), /text 2 names image 5/);
    await assert.rejects(retrievalRanks(images, randomMatrix(3, 5, 7), Int32Array.of(0, 1, 2)), /features of 4 and 5 dimensions/);
  });
});
