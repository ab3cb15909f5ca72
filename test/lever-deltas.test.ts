// bench/lever-deltas.ts: which measured row each experiment row of a GPU run is compared with.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { leverDeltas, type MeasuredStep } from '../bench/lever-deltas.js';

const row = (msPerStep: number, extra: Partial<MeasuredStep> = {}): MeasuredStep => ({
  model: 'ViT-B/32',
  batch: 256,
  msPerStep,
  imagesPerSecond: (256 * 1000) / msPerStep,
  cudaGraph: 'captured',
  ...extra,
});

test('an experiment row is compared with the row one experiment short, same model, batch and variant only', () => {
  const plain = row(55);
  const eagerPlain = row(60, { cudaGraph: 'off' });
  const kernel = row(50, { experiments: 'layernorm-kernel' });
  const full = row(64, { experiments: 'full-text-context' });
  const both = row(59, { experiments: 'layernorm-kernel,full-text-context' });
  const rn = row(120, { model: 'RN50', experiments: 'fold-batchnorm' }); // no RN50 default row: no line
  const eagerKernel = row(58, { cudaGraph: 'off', experiments: 'layernorm-kernel' });
  const deltas = leverDeltas([plain, eagerPlain, kernel, full, both, rn, eagerKernel]);
  const lines = deltas.map((d) => [d.lever, d.row.msPerStep, d.base.msPerStep]);
  assert.deepEqual(lines, [
    ['layernorm-kernel', 50, 55],
    ['full-text-context', 64, 55],
    ['full-text-context', 59, 50],
    ['layernorm-kernel', 59, 64],
    ['layernorm-kernel', 58, 60],
  ]);
  const first = deltas[0]!;
  assert.equal(first.msDelta, -5);
  assert.ok(Math.abs(first.imagesPercent - 10) < 1e-9, `${first.imagesPercent}`);
});
