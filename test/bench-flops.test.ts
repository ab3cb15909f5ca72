// bench/flops.ts: a train step's FLOPs from the architecture and the text positions run, held against
// the counts of PyTorch's FLOP counter (../shared/measurements/h100-reference.md: 11.32 TFLOP for
// ViT-B/32 and 13.49 TFLOP for RN50 at batch 256 and 77 positions, given to 0.01 TFLOP).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { trainStepFlops } from '../bench/flops.js';
import { architecture } from '../src/model/config.js';

test('77 positions at batch 256: the reference FLOP counter\'s totals', () => {
  assert.equal((trainStepFlops(architecture('ViT-B/32'), 77, 256).perStep / 1e12).toFixed(2), '11.32');
  assert.equal((trainStepFlops(architecture('RN50'), 77, 256).perStep / 1e12).toFixed(2), '13.49');
  assert.equal(trainStepFlops(architecture('ViT-B/32'), 77, 256).gflopPerPair.toFixed(1), '44.2');
  assert.equal(trainStepFlops(architecture('RN50'), 77, 256).gflopPerPair.toFixed(1), '52.7');
});

test('products and convolutions alone: the counter\'s own CPU count for open_clip ViT-B-32-quickgelu at batch 8', () => {
  // On the CPU the counter has no formula for the CPU attention kernel, so it counted the rest only:
  // 43,386,691,584 FLOPs per pair. The attention part is 3.5 × 4·n²·w·L per tower.
  const attention = 3.5 * (4 * 50 * 50 * 768 * 12 + 4 * 77 * 77 * 512 * 12);
  assert.equal(trainStepFlops(architecture('ViT-B/32'), 77, 8).perStep - 8 * attention, 8 * 43_386_691_584);
});

test('16 text positions: the text tower\'s share shrinks, the vision tower\'s stays', () => {
  const vit16 = trainStepFlops(architecture('ViT-B/32'), 16, 256);
  const vit77 = trainStepFlops(architecture('ViT-B/32'), 77, 256);
  assert.equal(vit16.gflopPerPair.toFixed(1), '29.9');
  assert.equal(trainStepFlops(architecture('RN50'), 16, 256).gflopPerPair.toFixed(1), '38.4');
  // Text per position per block: 3 × 24·w² products, 3.5 × 4·n·w attention; 12 blocks, w = 512.
  const text = (n: number) => 12 * (3 * 24 * 512 * 512 * n + 3.5 * 4 * n * n * 512);
  assert.equal(vit77.perStep - vit16.perStep, 256 * (text(77) - text(16)));
});
