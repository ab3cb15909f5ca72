// Training augmentation (src/data/augment.ts, the loader's `augment`): its options and their checks,
// the random resized crop's geometry, flip and colour operations on pixels, draws keyed per
// (seed, epoch, sample index), the crop cache's separate source entries, and a resumed training run
// that sees the same augmented pixels (its weights equal the uninterrupted run's).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';

import {
  addAugmentArgument,
  augmentInto,
  augmentParams,
  augmentProblems,
  augmentRng,
  augmentSourceResolution,
  colorJitterInPlace,
  DEFAULT_AUGMENTATION,
  randomResizedCropBox,
  resolveAugmentation,
  SMALL_AUGMENT_RESOLUTION,
  type AugmentParams,
} from '../src/data/augment.js';
import { CropCache } from '../src/data/crop-cache.js';
import { CropMemory } from '../src/data/crop-memory.js';
import type { Dataset } from '../src/data/dataset.js';
import { exportFashionMnist } from '../src/data/fashion-mnist.js';
import { createLoader, type Batch, type LoaderOptions } from '../src/data/loader.js';
import { preprocessImageUint8 } from '../src/data/preprocess.js';
import { parseSafetensorsHeader } from '../src/io/safetensors-header.js';
import { tokenizerFromFile } from '../src/text/tokenizer.js';
import { ConfigError, resolveConfig } from '../src/train/config.js';
import { compatDifferences, compatRecord } from '../src/train/resume-compat.js';
import { train, type TrainOptions } from '../src/train/loop.js';
import { createRng } from '../src/util/prng.js';
import { FASHION_MNIST_SKIP, fashionMnistPresent } from './helpers/fashion-mnist.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';
import { TINY_MODEL } from './helpers/tiny-model.js';

const R = 32;
const tmp = scratchDir('clip-augment-');
let dataset: Dataset;

/** An image whose every pixel differs from its mirror image and its neighbours: crops, flips and shifts all show. */
function patterned(width: number, height: number, salt: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      data[p] = (x * 7 + salt * 13) % 256;
      data[p + 1] = (y * 5 + x * x) % 256;
      data[p + 2] = (x * y + salt * 31) % 256;
    }
  }
  return data;
}

before(async () => {
  const root = path.join(tmp, 'ds');
  const samples: Dataset['samples'] = [];
  for (let i = 0; i < 10; i++) {
    const [width, height] = [40 + i * 4, 36 + (i % 3) * 9];
    const image = path.join(root, `${i}.png`);
    await fs.mkdir(root, { recursive: true });
    await sharp(patterned(width, height, i), { raw: { width, height, channels: 3 } }).png().toFile(image);
    samples.push({ image, label: 'x', labelIndex: 0, source: { file: image, line: 0 } });
  }
  dataset = { root, format: 'folder', kind: 'labels', classes: ['x'], samples, problems: [] };
});

async function collect(options: Partial<LoaderOptions>): Promise<Batch[]> {
  const out: Batch[] = [];
  const loader = createLoader(dataset, { batchSize: 4, resolution: R, seed: 3, epoch: 0, pixels: 'uint8', cache: false, ...options });
  for await (const batch of loader) out.push(batch);
  return out;
}

/** Each sample's pixels (by image path) over a pass. */
function pixelsBySample(batches: Batch[]): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const batch of batches) {
    const plane = R * R * 3;
    batch.samples.forEach((s, i) => out.set(s.image, new Uint8Array(batch.images.data.slice(i * plane, (i + 1) * plane).buffer)));
  }
  return out;
}

const params = (crop: AugmentParams['crop'], extra: Partial<AugmentParams> = {}): AugmentParams => ({ crop, flip: false, gray: false, ...extra });

describe('augmentation options', () => {
  test("true is open_clip's AugmentationCfg defaults: crop of 90–100 % of the area at ratio 3/4–4/3, no flip, no jitter, no grey", () => {
    assert.deepEqual(resolveAugmentation(true), { scale: [0.9, 1], ratio: [3 / 4, 4 / 3], hflip: 0, colorJitter: [0, 0, 0, 0], colorJitterProb: 0, grayScaleProb: 0 });
    assert.equal(resolveAugmentation(false), undefined);
    assert.equal(resolveAugmentation(undefined), undefined);
    // open_clip's own names are read, and a single jitter number is brightness, contrast and saturation.
    assert.deepEqual(resolveAugmentation({ color_jitter: 0.4, color_jitter_prob: 0.8, gray_scale_prob: 0.2 } as never), {
      ...DEFAULT_AUGMENTATION,
      colorJitter: [0.4, 0.4, 0.4, 0],
      colorJitterProb: 0.8,
      grayScaleProb: 0.2,
    });
    assert.deepEqual(resolveAugmentation({ colorJitter: [0.1, 0.2, 0.3], colorJitterProb: 1 })!.colorJitter, [0.1, 0.2, 0.3, 0]);
  });

  test('every bad value is reported at once, naming its key', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ scale: [0, 1] }, /^augment\.scale: must be \[min, max\] with 0 < min ≤ max ≤ 1 \(got \[0,1\]\)$/],
      [{ scale: [0.9, 0.5] }, /^augment\.scale: /],
      [{ scale: [0.5, 1.2] }, /^augment\.scale: /],
      [{ scale: 0.5 }, /^augment\.scale: /],
      [{ ratio: [-1, 2] }, /^augment\.ratio: must be \[min, max\] with 0 < min ≤ max/],
      [{ hflip: 1.5 }, /^augment\.hflip: must be a probability in \[0, 1\]/],
      [{ hflip: '0.5' }, /^augment\.hflip: /],
      [{ colorJitter: [0.4, -0.1, 0, 0], colorJitterProb: 1 }, /^augment\.colorJitter: must be a non-negative number or/],
      [{ colorJitter: [0.4, 0.4, 0.4, 0.6], colorJitterProb: 1 }, /^augment\.colorJitter: hue must be in \[0, 0\.5\]/],
      [{ colorJitter: [0.4, 0.4, 0.4, 0.1] }, /^augment\.colorJitterProb: must be above 0 when colorJitter is set/],
      [{ grayScaleProb: -0.1 }, /^augment\.grayScaleProb: must be a probability/],
      [{ flip: 0.5 }, /^augment\.flip: unknown option \(known: scale, ratio, hflip, colorJitter, colorJitterProb, grayScaleProb\)$/],
      [{ gray_scale_prob: 0.1, grayScaleProb: 0.2 }, /^augment\.grayScaleProb: given twice/],
    ];
    for (const [value, expected] of cases) {
      const problems = augmentProblems(value);
      assert.equal(problems.length, 1, `${JSON.stringify(value)}: ${problems.join(' | ')}`);
      assert.match(problems[0]!, expected);
    }
    assert.deepEqual(augmentProblems({ scale: [0, 1], hflip: 2 }).map((p) => p.split(':')[0]), ['augment.scale', 'augment.hflip']);
    // A file's __proto__ is an unknown option, not the object's prototype.
    assert.deepEqual(augmentProblems(JSON.parse('{"__proto__": {"hflip": 1}}')).map((p) => p.split(':')[0]), ['augment.__proto__']);
    assert.deepEqual(Object.keys(addAugmentArgument('__proto__=1')), ['__proto__']);
    assert.deepEqual(augmentProblems('yes'), ['augment: must be true, false or a mapping of augmentation options']);
    assert.deepEqual(augmentProblems(true), []);
    assert.throws(() => resolveAugmentation({ hflip: 2 }), (err: Error) => err instanceof RangeError && /augment\.hflip/.test(err.message));
  });

  test('the training configuration and the loader check them once, naming the key', async () => {
    assert.throws(
      () => resolveConfig({ data: 'd', out: 'o', augment: { scale: [0.5, 2], hflip: -1 } as never }),
      (err: ConfigError) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('augment.scale: ')) && err.problems.some((p) => p.startsWith('augment.hflip: ')),
    );
    assert.equal(resolveConfig({ data: 'd', out: 'o' }).augment, false, 'off by default');
    assert.equal(resolveConfig({ data: 'd', out: 'o', augment: true }).augment, true);
    assert.throws(() => createLoader(dataset, { batchSize: 2, augment: { ratio: [2, 1] } }), /augment\.ratio/);
  });

  test('the resume record holds the resolved augmentation when it is on, and nothing when off (older checkpoints stay resumable)', () => {
    const record = (augment: unknown) =>
      compatRecord(resolveConfig({ data: 'd', out: 'o', model: 'm.json', init: 'random', augment: augment as never }), {
        precision: 'fp32',
        architecture: TINY_MODEL as never,
        initialWeights: 'random:x',
        dataset: 'h',
        worldSize: 1,
      });
    assert.equal('augment' in record(false), false);
    assert.deepEqual(record(true).augment, DEFAULT_AUGMENTATION);
    assert.deepEqual(compatDifferences(record(true), record({ scale: [0.9, 1], hflip: 0 })).differences, []);
    assert.deepEqual(compatDifferences(record(true), record({ hflip: 0.5 })).differences.map((d) => d.key), ['augment']);
    assert.deepEqual(compatDifferences(record(false), record(true)).differences.map((d) => d.key), ['augment']);
  });

  test('clip-native train --augment: alone, with options (open_clip\'s names become ours), and a bad value refused naming its key', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'train', '--data', 'd', '--out', 'o', ...args, '--print-config'], { encoding: 'utf8' });
    assert.equal(JSON.parse(cli().stdout).augment, false);
    assert.equal(JSON.parse(cli('--augment').stdout).augment, true);
    const withOptions = cli('--augment', 'scale=0.5,1', 'color_jitter=(0.4,0.4,0.4,0.1)', 'color_jitter_prob=0.8', '--epochs', '3');
    assert.deepEqual(JSON.parse(withOptions.stdout).augment, { scale: [0.5, 1], colorJitter: [0.4, 0.4, 0.4, 0.1], colorJitterProb: 0.8 });
    assert.equal(JSON.parse(withOptions.stdout).epochs, 3, 'the next flag ends the list');
    const bad = cli('--augment', 'scale=0,1', 'hflip=2');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /augment\.scale: must be \[min, max\]/);
    assert.match(bad.stderr, /augment\.hflip: must be a probability/);
  });

  test("the command line's key=value pairs, open_clip's --aug-cfg style", () => {
    let options = addAugmentArgument('scale=0.5,1');
    options = addAugmentArgument('color_jitter=(0.4,0.4,0.4,0.1)', options);
    options = addAugmentArgument('hflip=0.5', options);
    assert.deepEqual(options, { scale: [0.5, 1], colorJitter: [0.4, 0.4, 0.4, 0.1], hflip: 0.5 });
    assert.throws(() => addAugmentArgument('scale=a,1'), /augment\.scale must be a number or numbers/);
    assert.throws(() => addAugmentArgument('scale'), /expected key=value/);
  });
});

describe('random resized crop', () => {
  test('boxes lie inside the image with area and aspect within scale and ratio (up to the rounding of each side)', () => {
    const settings: Array<{ scale: [number, number]; ratio: [number, number] }> = [
      { scale: [0.9, 1], ratio: [3 / 4, 4 / 3] },
      { scale: [0.2, 0.6], ratio: [0.5, 2] },
      { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
    ];
    for (const [width, height] of [[37, 37], [256, 256], [300, 120], [50, 400]] as const) {
      for (const { scale, ratio } of settings) {
        const area = width * height;
        const fractions: number[] = [];
        for (let i = 0; i < 1500; i++) {
          const box = randomResizedCropBox(augmentRng(1, 2, i), width, height, scale, ratio);
          const where = `${width}x${height} scale ${scale} ratio ${ratio.map((r) => r.toFixed(2))}: ${JSON.stringify(box)}`;
          assert.ok(box.left >= 0 && box.top >= 0 && box.width >= 1 && box.height >= 1, where);
          assert.ok(box.left + box.width <= width && box.top + box.height <= height, where);
          const fallback = box.left === Math.trunc((width - box.width) / 2) && box.top === Math.trunc((height - box.height) / 2) && (box.width === width || box.height === height);
          if (fallback) continue;
          // Each side is the real one rounded: within half a pixel.
          assert.ok((box.width + 0.5) * (box.height + 0.5) >= scale[0] * area && (box.width - 0.5) * (box.height - 0.5) <= scale[1] * area, `area: ${where}`);
          assert.ok((box.width + 0.5) / (box.height - 0.5) >= ratio[0] && (box.width - 0.5) / (box.height + 0.5) <= ratio[1], `aspect: ${where}`);
          fractions.push((box.width * box.height) / area);
        }
        // The draws cover the range rather than sit at one end of it (on a large square, where every area fits).
        if (width === height && width > 100) {
          const span = scale[1] - scale[0];
          assert.ok(Math.min(...fractions) < scale[0] + 0.15 * span && Math.max(...fractions) > scale[1] - 0.15 * span, `${width}x${height} ${scale}: ${Math.min(...fractions)}–${Math.max(...fractions)}`);
        }
      }
    }
  });

  test("without a box that fits in ten tries, torchvision's fallback: the whole image cut to the ratio, centred", () => {
    // Area 1 at ratio 2 needs a box wider than the square image: every try fails.
    assert.deepEqual(randomResizedCropBox(createRng(0), 40, 40, [1, 1], [2, 2]), { top: 10, left: 0, width: 40, height: 20 });
    assert.deepEqual(randomResizedCropBox(createRng(0), 40, 40, [1, 1], [0.5, 0.5]), { top: 0, left: 10, width: 20, height: 40 });
  });

  test('the crop box lands where it says: a box of R×R is copied as it is, on both resize paths', async () => {
    for (const resolution of [R, SMALL_AUGMENT_RESOLUTION + 32]) {
      const size = augmentSourceResolution(resolution);
      const source = new Uint8Array(patterned(size, size, 5));
      const dest = new Uint8Array(resolution * resolution * 3);
      const crop = { left: 3, top: size - resolution - 1, width: resolution, height: resolution };
      await augmentInto(source, size, dest, resolution, params(crop));
      for (let y = 0; y < resolution; y++) {
        const from = ((crop.top + y) * size + crop.left) * 3;
        assert.deepEqual(dest.subarray(y * resolution * 3, (y + 1) * resolution * 3), source.subarray(from, from + resolution * 3), `R ${resolution}, row ${y}`);
      }
    }
  });
});

describe('draws and pixels', () => {
  test('draws are a pure function of (seed, epoch, sample index), and each key changes them', () => {
    const aug = resolveAugmentation({ scale: [0.3, 1], hflip: 0.5, colorJitter: 0.4, colorJitterProb: 0.5, grayScaleProb: 0.5 })!;
    const draw = (seed: number, epoch: number, index: number) => augmentParams(augmentRng(seed, epoch, index), 256, 256, aug);
    const differing = (other: (i: number) => AugmentParams) => Array.from({ length: 50 }, (_, i) => i).filter((i) => JSON.stringify(draw(7, 3, i)) !== JSON.stringify(other(i))).length;
    assert.equal(differing((i) => draw(7, 3, i)), 0);
    assert.equal(differing((i) => draw(8, 3, i)), 50);
    assert.equal(differing((i) => draw(7, 4, i)), 50);
    assert.equal(differing((i) => draw(7, 3, i + 1)), 50);
  });

  test('flip is off by default; hflip p flips about p of the samples, and turning it on changes no crop', () => {
    const plain = resolveAugmentation(true)!;
    const flipping = resolveAugmentation({ hflip: 0.5 })!;
    let flips = 0;
    for (let i = 0; i < 2000; i++) {
      const a = augmentParams(augmentRng(0, 0, i), 256, 256, plain);
      const b = augmentParams(augmentRng(0, 0, i), 256, 256, flipping);
      assert.equal(a.flip, false);
      assert.deepEqual(b.crop, a.crop);
      if (b.flip) flips++;
    }
    // Binomial(2000, 0.5): 6 standard deviations either side.
    assert.ok(flips > 1000 - 135 && flips < 1000 + 135, `${flips} flips of 2000`);
  });

  test('a flip mirrors each row; greyscale is ITU-R 601-2 luma in every channel', async () => {
    const size = augmentSourceResolution(R);
    const source = new Uint8Array(patterned(size, size, 2));
    const crop = { left: 2, top: 1, width: 33, height: 30 };
    const [plain, flipped, grey] = [new Uint8Array(R * R * 3), new Uint8Array(R * R * 3), new Uint8Array(R * R * 3)];
    await augmentInto(source, size, plain, R, params(crop));
    await augmentInto(source, size, flipped, R, params(crop, { flip: true }));
    await augmentInto(source, size, grey, R, params(crop, { gray: true }));
    assert.notDeepEqual(flipped, plain);
    for (let y = 0; y < R; y++) {
      for (let x = 0; x < R; x++) {
        const p = (y * R + x) * 3;
        const m = (y * R + (R - 1 - x)) * 3;
        assert.deepEqual([...flipped.subarray(p, p + 3)], [...plain.subarray(m, m + 3)]);
        const luma = Math.round(0.299 * plain[p]! + 0.587 * plain[p + 1]! + 0.114 * plain[p + 2]!);
        assert.ok(Math.abs(grey[p]! - luma) <= 1 && grey[p] === grey[p + 1] && grey[p] === grey[p + 2], `pixel ${x},${y}`);
      }
    }
  });

  test("colour jitter: brightness scales, contrast 0 is the mean grey, saturation 0 the pixel's grey, hue turns the colour wheel", () => {
    const jitter = (rgb: number[], change: Partial<NonNullable<AugmentParams['jitter']>>) => {
      const pixels = Uint8Array.from(rgb);
      colorJitterInPlace(pixels, { order: [0, 1, 2, 3], brightness: 1, contrast: 1, saturation: 1, hue: 0, ...change });
      return [...pixels];
    };
    const image = [200, 100, 50, 10, 20, 30];
    assert.deepEqual(jitter(image, { brightness: 0.5 }), [100, 50, 25, 5, 10, 15]);
    assert.deepEqual(jitter(image, { brightness: 2 }), [255, 200, 100, 20, 40, 60], 'clamped at 255');
    const greys = image.length / 3;
    const meanGrey = [0, 3].reduce((sum, p) => sum + 0.299 * image[p]! + 0.587 * image[p + 1]! + 0.114 * image[p + 2]!, 0) / greys;
    assert.deepEqual(jitter(image, { contrast: 0 }), Array(6).fill(Math.round(meanGrey)));
    const [g0, g1] = [0, 3].map((p) => Math.round(0.299 * image[p]! + 0.587 * image[p + 1]! + 0.114 * image[p + 2]!));
    assert.deepEqual(jitter(image, { saturation: 0 }), [g0, g0, g0, g1, g1, g1]);
    assert.deepEqual(jitter([255, 0, 0, 0, 0, 255], { hue: 1 / 3 }), [0, 255, 0, 255, 0, 0], 'red → green, blue → red');
    assert.deepEqual(jitter([255, 0, 0, 90, 90, 90], { hue: 0.5 }), [0, 255, 255, 90, 90, 90], 'red → cyan; grey has no hue');
    assert.deepEqual(jitter(image, {}), image, 'identity factors change nothing');
  });

  test('the fused colour jitter equals the four operations applied one after another over the whole image, in any order', () => {
    // The reference: each operation a pass over the image in float64, clamped, rounded at the end.
    const reference = (rgb: Uint8Array, j: NonNullable<AugmentParams['jitter']>) => {
      const px = Float64Array.from(rgb);
      const grey = (p: number) => 0.299 * px[p]! + 0.587 * px[p + 1]! + 0.114 * px[p + 2]!;
      const clamp = (x: number) => Math.min(255, Math.max(0, x));
      for (const op of j.order) {
        if (op === 3) {
          for (let p = 0; p < px.length; p += 3) {
            const [r, g, b] = [px[p]! / 255, px[p + 1]! / 255, px[p + 2]! / 255];
            const [max, min] = [Math.max(r, g, b), Math.min(r, g, b)];
            if (max === min) continue;
            const c = max - min;
            const h = ((((max === r ? (g - b) / c : max === g ? 2 + (b - r) / c : 4 + (r - g) / c) / 6 + j.hue) % 1) + 1) % 1;
            // HSV → RGB by the textbook formula: channel n takes v − v·s·max(0, min(k, 4 − k, 1)), k = (n + 6h) mod 6.
            const channel = (n: number) => {
              const k = (n + h * 6) % 6;
              return (max - c * Math.max(0, Math.min(k, 4 - k, 1))) * 255;
            };
            [px[p], px[p + 1], px[p + 2]] = [clamp(channel(5)), clamp(channel(3)), clamp(channel(1))];
          }
          continue;
        }
        const factor = [j.brightness, j.contrast, j.saturation][op]!;
        let mean = 0;
        for (let p = 0; p < px.length; p += 3) mean += grey(p) / (px.length / 3);
        for (let p = 0; p < px.length; p += 3) {
          const other = op === 0 ? 0 : op === 1 ? mean : grey(p);
          for (let c = 0; c < 3; c++) px[p + c] = clamp(factor * px[p + c]! + (1 - factor) * other);
        }
      }
      return Uint8Array.from(px, Math.round);
    };
    const aug = resolveAugmentation({ colorJitter: [0.6, 0.6, 0.6, 0.3], colorJitterProb: 1 })!;
    const image = new Uint8Array(patterned(24, 20, 9));
    for (let i = 0; i < 40; i++) {
      const { jitter } = augmentParams(augmentRng(0, 0, i), 24, 20, aug);
      const fused = Uint8Array.from(image);
      colorJitterInPlace(fused, jitter!);
      const expected = reference(image, jitter!);
      const off = fused.filter((v, k) => v !== expected[k]).length;
      // Only values at a rounding boundary may differ (float32 between the passes around contrast).
      assert.ok(fused.every((v, k) => Math.abs(v - expected[k]!) <= 1) && off <= image.length / 100, `draw ${i} (${JSON.stringify(jitter)}): ${off} values differ`);
    }
  });
});

describe('the loader with augmentation', () => {
  test("batches are R×R crops drawn per sample: the same for the same (seed, epoch) whatever the batch size, cache or a resume's start", async () => {
    const first = await collect({ augment: { scale: [0.5, 1], hflip: 0.5 } });
    assert.deepEqual(first[0]!.images.shape, [4, R, R, 3]);
    // Decoded (and cached) in a worker thread, then read back from that cache.
    const again = await collect({ augment: { scale: [0.5, 1], hflip: 0.5 }, cache: true, cacheDir: path.join(tmp, 'cache-a'), decodeThreads: 1 });
    const fromCache = await collect({ augment: { scale: [0.5, 1], hflip: 0.5 }, cache: true, cacheDir: path.join(tmp, 'cache-a') });
    const otherBatches = await collect({ augment: { scale: [0.5, 1], hflip: 0.5 }, batchSize: 3, decodeThreads: 0 });
    const reference = pixelsBySample(first);
    assert.equal(reference.size, dataset.samples.length);
    for (const run of [again, fromCache, otherBatches]) assert.deepEqual(pixelsBySample(run), reference);
    const entries = (await fs.readdir(path.join(tmp, 'cache-a'), { recursive: true })).filter((f) => f.endsWith('.crop'));
    assert.equal(entries.length, dataset.samples.length, 'one source per image in the cache');
    // A 20-byte header, then the source's pixels: the source resolution, not R.
    const size = augmentSourceResolution(R);
    for (const entry of entries) assert.equal((await fs.stat(path.join(tmp, 'cache-a', entry))).size, 20 + size * size * 3, entry);

    // A resume at batch 2 reproduces batches 2… of the uninterrupted pass, bytes and order.
    const resumed = await collect({ augment: { scale: [0.5, 1], hflip: 0.5 }, startBatch: 2 });
    assert.deepEqual(resumed.map((b) => b.index), first.slice(2).map((b) => b.index));
    resumed.forEach((b, i) => assert.deepEqual(b.images.data, first[i + 2]!.images.data));

    // Another epoch or seed draws other crops for every sample; without augmentation, the centre crop.
    for (const other of [await collect({ augment: { scale: [0.5, 1], hflip: 0.5 }, epoch: 1 }), await collect({ augment: { scale: [0.5, 1], hflip: 0.5 }, seed: 4 })]) {
      const pixels = pixelsBySample(other);
      for (const [image, data] of reference) assert.notDeepEqual(pixels.get(image), data, image);
    }
    const centre = pixelsBySample(await collect({}));
    const sample = dataset.samples[0]!.image;
    assert.deepEqual(centre.get(sample), (await preprocessImageUint8(sample, { resolution: R })).data);
    assert.notDeepEqual(reference.get(sample), centre.get(sample));

    // Normalised batches carry the same crops.
    const normalized = await collect({ augment: { scale: [0.5, 1], hflip: 0.5 }, pixels: 'normalized' });
    assert.deepEqual(normalized[0]!.images.shape, [4, 3, R, R]);
  });

  test('the cache and memory hold augmentation sources under their own key: switching the mode never serves the other kind', async () => {
    const cacheDir = path.join(tmp, 'cache-switch');
    const memory = new CropMemory(64 * 2 ** 20);
    const plain = pixelsBySample(await collect({}));
    const augmented = pixelsBySample(await collect({ augment: true }));
    const shared = { cache: true, cacheDir, memory };
    // Each kind written first, then the other read through the same cache and memory.
    for (const order of [[{ augment: true }, {}], [{}, { augment: true }]] as const) {
      for (const options of order) {
        const got = pixelsBySample(await collect({ ...shared, ...options }));
        assert.deepEqual(got, 'augment' in options ? augmented : plain);
      }
    }
    // The source is the eval crop at a resolution a little above R, and its key differs even at that resolution.
    const size = augmentSourceResolution(R);
    assert.ok(size > R && size <= R * 1.2, `source ${size} for R ${R}`);
    const key = { file: dataset.samples[0]!.image, size: 1, mtimeMs: 1, resolution: size, exif: true };
    const cache = new CropCache(cacheDir);
    assert.notEqual(cache.entryPath({ ...key, augmentSource: true }), cache.entryPath(key));
    assert.equal(cache.entryPath({ ...key, augmentSource: false }), cache.entryPath(key), 'plain crops keep the keys they had');
  });
});

describe('training with augmentation', () => {
  let data: string;
  let modelJson: string;
  before(async () => {
    if (!fashionMnistPresent) return;
    data = path.join(tmp, 'fm');
    await exportFashionMnist({ out: data, trainPerClass: 4, testPerClass: 1, seed: 2 });
    modelJson = path.join(tmp, 'tiny.json');
    await fs.writeFile(modelJson, JSON.stringify(TINY_MODEL));
  });
  const options = async (out: string, extra: Partial<TrainOptions> = {}): Promise<TrainOptions> => ({
    data,
    ext: 'png',
    model: modelJson,
    init: 'random',
    out: path.join(tmp, out),
    epochs: 2,
    batchSize: 8,
    lr: 1e-3,
    optimizer: 'adamw',
    schedule: 'step',
    stepEvery: 1,
    gamma: 0.5,
    checkpointEvery: 1,
    device: 'cpu',
    augment: { scale: [0.5, 1], hflip: 0.5, colorJitter: [0.3, 0.3, 0.3, 0.05], colorJitterProb: 0.8, grayScaleProb: 0.2 },
    cacheDir: path.join(tmp, 'train-crops'),
    tokenizer: await tokenizerFromFile(fixture('bpe_simple_vocab_16e6.txt.gz')),
    ...extra,
  });
  const weights = async (out: string) => {
    const bytes = await fs.readFile(path.join(tmp, out, 'tiny_epoch_2.safetensors'));
    return bytes.subarray(parseSafetensorsHeader(bytes).dataStart);
  };

  test('a run interrupted mid-epoch resumes to the weights of the uninterrupted one, bitwise; a changed augmentation is refused', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    await train(await options('straight'));
    await train(await options('plain', { augment: false }));
    assert.notDeepEqual(await weights('straight'), await weights('plain'), 'augmentation changes what is trained');

    const controller = new AbortController();
    let batches = 0;
    const onBatch = () => void (++batches === 7 && controller.abort()); // epoch 2, batch 2
    assert.equal((await train(await options('resumed', { signal: controller.signal, onBatch }))).interrupted, true);
    await assert.rejects(train(await options('resumed', { augment: { scale: [0.6, 1] }, resume: 'latest' })), /augment: checkpoint/);
    await train(await options('resumed', { resume: 'latest' }));
    assert.deepEqual(await weights('resumed'), await weights('straight'));
  });
});
