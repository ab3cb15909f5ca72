// The demo's labelled images, drawn at run time from a seed (nothing to download, the same bytes every
// time): one filled circle, square or triangle per image on a noisy background, labelled by its colour.
// Colour is what a small CLIP from random weights can learn in a minute on a CPU; the shapes, sizes,
// places and noise vary so that it has to look at the pixels rather than at a constant.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import { createRng, type Rng } from '../util/prng.js';

export const EXAMPLE_COLOURS: Readonly<Record<string, readonly [number, number, number]>> = {
  red: [220, 40, 40],
  green: [40, 180, 60],
  blue: [40, 70, 220],
  yellow: [235, 210, 40],
  purple: [150, 60, 190],
  orange: [240, 140, 30],
};

const SHAPES = ['circle', 'square', 'triangle'] as const;
type Shape = (typeof SHAPES)[number];

export interface ExampleSetOptions {
  /** Training images per class (default 40). */
  trainPerClass?: number;
  /** Test images per class (default 10). */
  testPerClass?: number;
  /** Side of each image in pixels (default 64). */
  size?: number;
  seed?: number;
}

export interface ExampleSet {
  /** The blog layout's root: images/<label>/<stem>.png, meta/train.txt, meta/test.txt. */
  dir: string;
  labels: string[];
  train: number;
  test: number;
}

/** Whether pixel (x, y) lies inside `shape` centred at (cx, cy) with half-size r. */
function inside(shape: Shape, x: number, y: number, cx: number, cy: number, r: number): boolean {
  const dx = x - cx;
  const dy = y - cy;
  if (shape === 'circle') return dx * dx + dy * dy <= r * r;
  if (shape === 'square') return Math.abs(dx) <= r && Math.abs(dy) <= r;
  // An upward triangle: inside the band |dy| ≤ r and narrowing towards the top.
  return dy >= -r && dy <= r && Math.abs(dx) <= (dy + r) / 2;
}

/** One image's RGB bytes: grey noise, then the shape in its colour (each pixel jittered). */
function drawImage(rng: Rng, size: number, colour: readonly [number, number, number]): Buffer {
  const shape = SHAPES[rng.nextInt(SHAPES.length)]!;
  const r = size * (0.18 + 0.17 * rng.next());
  const cx = r + rng.next() * (size - 2 * r);
  const cy = r + rng.next() * (size - 2 * r);
  const pixels = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const grey = 90 + rng.nextInt(80);
      const on = inside(shape, x, y, cx, cy, r);
      for (let c = 0; c < 3; c++) {
        const value = on ? colour[c]! + rng.nextInt(31) - 15 : grey;
        pixels[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, value));
      }
    }
  }
  return pixels;
}

/** Writes the example set under `dir` (replacing what is there) and returns what it holds. */
export async function writeExampleSet(dir: string, options: ExampleSetOptions = {}): Promise<ExampleSet> {
  const { trainPerClass = 40, testPerClass = 10, size = 64, seed = 0 } = options;
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.join(dir, 'meta'), { recursive: true });
  const labels = Object.keys(EXAMPLE_COLOURS);
  const lines: Record<'train' | 'test', string[]> = { train: [], test: [] };
  for (const [index, label] of labels.entries()) {
    const rng = createRng(seed, index);
    await fs.mkdir(path.join(dir, 'images', label), { recursive: true });
    for (let i = 0; i < trainPerClass + testPerClass; i++) {
      const stem = `${label}_${String(i).padStart(3, '0')}`;
      const raw = drawImage(rng, size, EXAMPLE_COLOURS[label]!);
      await sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png().toFile(path.join(dir, 'images', label, `${stem}.png`));
      lines[i < trainPerClass ? 'train' : 'test'].push(`${label}/${stem}`);
    }
  }
  for (const split of ['train', 'test'] as const) await fs.writeFile(path.join(dir, 'meta', `${split}.txt`), lines[split].join('\n') + '\n');
  return { dir, labels, train: lines.train.length, test: lines.test.length };
}
