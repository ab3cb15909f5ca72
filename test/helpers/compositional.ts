// A caption dataset drawn at test time: two coloured shapes per 32 px image, one above the other or
// side by side, each image with two captions that say the same ("a red circle above a blue square",
// "a blue square below a red circle"). Retrieval needs colour, shape and position, and word order.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import { createRng, type Rng } from '../../src/util/prng.js';

const SIZE = 32;
const COLOURS: Record<string, [number, number, number]> = { red: [220, 40, 40], green: [40, 170, 40], blue: [40, 70, 225], yellow: [235, 205, 30] };
const SHAPES = ['circle', 'square', 'triangle'] as const;
type Shape = (typeof SHAPES)[number];

interface Thing {
  colour: string;
  shape: Shape;
}

/** A composition: `first` is above (vertical) or left of (horizontal) `second`. */
interface Composition {
  first: Thing;
  second: Thing;
  vertical: boolean;
}

function allCompositions(): Composition[] {
  const things = Object.keys(COLOURS).flatMap((colour) => SHAPES.map((shape) => ({ colour, shape })));
  return things.flatMap((first) => things.filter((t) => t !== first).flatMap((second) => [true, false].map((vertical) => ({ first, second, vertical }))));
}

function captions({ first, second, vertical }: Composition): string[] {
  const a = `a ${first.colour} ${first.shape}`;
  const b = `a ${second.colour} ${second.shape}`;
  return vertical ? [`${a} above ${b}`, `${b} below ${a}`] : [`${a} to the left of ${b}`, `${b} to the right of ${a}`];
}

/** Whether (x, y) lies in `shape` of half-size r centred at (cx, cy). */
function inside(shape: Shape, x: number, y: number, cx: number, cy: number, r: number): boolean {
  const dx = x - cx;
  const dy = y - cy;
  if (shape === 'square') return Math.abs(dx) <= r && Math.abs(dy) <= r;
  if (shape === 'circle') return dx * dx + dy * dy <= r * r;
  // An upward triangle: apex at the top, base at the bottom.
  return dy <= r && dy >= -r && Math.abs(dx) <= (dy + r) / 2;
}

function draw(c: Composition, rng: Rng): Buffer {
  const pixels = Buffer.alloc(SIZE * SIZE * 3, 245);
  const jitter = () => rng.nextInt(5) - 2;
  const places = c.vertical ? [[16, 8], [16, 24]] : [[8, 16], [24, 16]];
  [c.first, c.second].forEach((thing, k) => {
    const [cx, cy] = [places[k]![0]! + jitter(), places[k]![1]! + jitter()];
    const r = 5 + rng.nextInt(2);
    const colour = COLOURS[thing.colour]!;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) if (inside(thing.shape, x, y, cx, cy, r)) pixels.set(colour, (y * SIZE + x) * 3);
    }
  });
  return pixels;
}

export interface CompositionalSet {
  /** The table's path: columns image, caption, split; two rows (captions) per image. */
  csv: string;
  trainImages: number;
  testImages: number;
}

/**
 * `<dir>/captions.csv` and `<dir>/images/*.png`: `train` images of random compositions and `test`
 * images of distinct ones (each test caption names one test image only), seeded.
 */
export async function writeCompositionalSet(dir: string, { train, test, seed = 0 }: { train: number; test: number; seed?: number }): Promise<CompositionalSet> {
  const compositions = allCompositions();
  if (test > compositions.length) throw new Error(`at most ${compositions.length} distinct test compositions`);
  const rng = createRng(seed);
  const order = compositions.map((c, i) => ({ c, key: rng.next(), i })).sort((a, b) => a.key - b.key);
  const heldOut = order.slice(0, test).map((o) => o.c);
  const rows = ['image,caption,split'];
  await fs.mkdir(path.join(dir, 'images'), { recursive: true });
  const items = [...heldOut.map((c) => ({ c, split: 'test' })), ...Array.from({ length: train }, () => ({ c: compositions[rng.nextInt(compositions.length)]!, split: 'train' }))];
  const name = (i: number) => `images/${items[i]!.split}-${i}.png`;
  await Promise.all(items.map(({ c }, i) => sharp(draw(c, createRng(seed, i)), { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toFile(path.join(dir, name(i)))));
  items.forEach(({ c, split }, i) => rows.push(...captions(c).map((caption) => `${name(i)},${caption},${split}`)));
  const csv = path.join(dir, 'captions.csv');
  await fs.writeFile(csv, rows.join('\n') + '\n');
  return { csv, trainImages: train, testImages: test };
}
