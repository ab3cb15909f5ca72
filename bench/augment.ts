/**
 * Cost per image of the loader's training augmentation on the host (src/data/augment.ts): the draws
 * (augmentParams, keyed per sample) and the pixels (augmentInto: crop, bicubic resize, flip, colour
 * jitter, greyscale), for the source the crop cache holds (augmentSourceResolution) at a model's
 * resolution, per option set. The sources are photos from the fixtures, preprocessed as the loader does.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/augment.js [--images 64] [--repeat 5] [--write bench/results/augment-cpu.md]
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

import { augmentInto, augmentParams, augmentRng, augmentSourceResolution, resolveAugmentation, SMALL_AUGMENT_RESOLUTION, type AugmentOptions } from '../src/data/augment.js';
import { resampleBicubic } from '../src/data/pillow-resample.js';
import { preprocessImageUint8 } from '../src/data/preprocess.js';
import { fixture } from '../test/helpers/fixtures.js';

const { values } = parseArgs({ options: { images: { type: 'string', default: '64' }, repeat: { type: 'string', default: '5' }, write: { type: 'string' } } });
const images = Number(values.images);
const repeat = Number(values.repeat);

const OPTION_SETS: Array<[string, AugmentOptions | true]> = [
  ['crop only (open_clip default: scale 0.9–1)', true],
  ['crop scale 0.5–1 + hflip 0.5', { scale: [0.5, 1], hflip: 0.5 }],
  ['+ colour jitter 0.4,0.4,0.4,0.1 p=1', { scale: [0.5, 1], hflip: 0.5, colorJitter: [0.4, 0.4, 0.4, 0.1], colorJitterProb: 1 }],
  ['SimCLR: jitter p=0.8 + grey p=0.2', { scale: [0.5, 1], hflip: 0.5, colorJitter: [0.4, 0.4, 0.4, 0.1], colorJitterProb: 0.8, grayScaleProb: 0.2 }],
];

async function sources(size: number): Promise<Uint8Array[]> {
  const dir = fixture('images');
  const files = (await fs.readdir(dir)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  const crops = await Promise.all(files.map((f) => preprocessImageUint8(`${dir}/${f}`, { resolution: size })));
  return Array.from({ length: images }, (_, i) => crops[i % crops.length]!.data);
}

/**
 * Microseconds per image: the best of `repeat` passes over the images (draws and pixels; draws alone),
 * a batch of 32 at a time as the loader does (their resizes run on sharp's threads at once).
 */
async function measure(src: Uint8Array[], size: number, resolution: number, options: AugmentOptions | true): Promise<{ total: number; draws: number }> {
  const aug = resolveAugmentation(options)!;
  const plane = resolution * resolution * 3;
  const dest = new Uint8Array(32 * plane);
  let total = Infinity;
  let draws = Infinity;
  for (let r = 0; r < repeat; r++) {
    let start = performance.now();
    for (let i = 0; i < src.length; i++) augmentParams(augmentRng(r, 0, i), size, size, aug);
    draws = Math.min(draws, ((performance.now() - start) * 1000) / src.length);
    start = performance.now();
    for (let b = 0; b < src.length; b += 32) {
      const batch = src.slice(b, b + 32);
      await Promise.all(batch.map((s, j) => augmentInto(s, size, dest.subarray((j % 32) * plane, ((j % 32) + 1) * plane), resolution, augmentParams(augmentRng(r, 0, b + j), size, size, aug))));
    }
    total = Math.min(total, ((performance.now() - start) * 1000) / src.length);
  }
  return { total, draws };
}

/**
 * The crop's resize alone, both ways augmentInto can take (it picks by resolution): the Pillow port on
 * this thread, or sharp on the thread pool, 32 at once. Microseconds per image, best of `repeat`.
 */
async function resizeAlone(src: Uint8Array[], size: number, resolution: number, way: 'port' | 'sharp'): Promise<number> {
  const aug = resolveAugmentation(true)!;
  const win = { left: 0, top: 0, width: resolution, height: resolution };
  let best = Infinity;
  for (let r = 0; r < repeat; r++) {
    const boxes = src.map((_, i) => augmentParams(augmentRng(r, 0, i), size, size, aug).crop);
    const start = performance.now();
    for (let b = 0; b < src.length; b += 32) {
      await Promise.all(
        src.slice(b, b + 32).map(async (s, j) => {
          const crop = boxes[b + j]!;
          if (way === 'sharp') {
            return sharp(s, { raw: { width: size, height: size, channels: 3 } }).extract(crop).resize(resolution, resolution, { kernel: 'cubic', fit: 'fill', fastShrinkOnLoad: false }).raw().toBuffer();
          }
          const box = new Uint8Array(crop.width * crop.height * 3);
          for (let y = 0; y < crop.height; y++) box.set(s.subarray(((crop.top + y) * size + crop.left) * 3, ((crop.top + y) * size + crop.left + crop.width) * 3), y * crop.width * 3);
          return resampleBicubic({ data: box, width: crop.width, height: crop.height, channels: 3 }, resolution, resolution, win).data;
        }),
      );
    }
    best = Math.min(best, ((performance.now() - start) * 1000) / src.length);
  }
  return best;
}

const rows: string[] = [];
for (const resolution of [224, 32]) {
  const size = augmentSourceResolution(resolution);
  const src = await sources(size);
  for (const [name, options] of OPTION_SETS) {
    const { total, draws } = await measure(src, size, resolution, options);
    rows.push(`| ${resolution} (source ${size}) | ${name} | ${total.toFixed(0)} | ${draws.toFixed(1)} | ${(1e6 / total).toFixed(0)} |`);
    process.stderr.write(rows.at(-1)! + '\n');
  }
  for (const way of ['port', 'sharp'] as const) {
    const total = await resizeAlone(src, size, resolution, way);
    const chosen = (resolution <= SMALL_AUGMENT_RESOLUTION) === (way === 'port') ? ' (the one augmentInto takes)' : '';
    rows.push(`| ${resolution} (source ${size}) | resize alone: ${way === 'port' ? 'Pillow port, main thread' : 'sharp, thread pool'}${chosen} | ${total.toFixed(0)} | – | ${(1e6 / total).toFixed(0)} |`);
    process.stderr.write(rows.at(-1)! + '\n');
  }
}

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const report = [
  '# Training augmentation on the host (src/data/augment.ts): cost per image',
  '',
  `- command: \`npx tsc -p tsconfig.json && node dist/bench/augment.js --images ${images} --repeat ${repeat}${values.write ? ` --write ${values.write}` : ''}\``,
  `- date: ${new Date().toISOString()}`,
  `- machine: ${os.availableParallelism()} CPUs (${cpu}), no GPU, Node ${process.version}; the draws and colour operations on the main thread (the loader's), the crop's resize on sharp's threads (UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default (4)'}); load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (shared with other work: expect noise)`,
  `- per row: ${images} images (fixture photos preprocessed to the source size), best of ${repeat} passes; "draws" is augmentParams alone (keyed generator, crop box, flip, jitter, grey), included in "total"`,
  '- device path: **not measured**. The issue asks for the uint8 batch augmented on the device where that is faster; this session had no GPU lent, so only the host path exists and was timed.',
  '',
  '| resolution | options | total µs/image | draws µs/image | images/s |',
  '|---|---|---:|---:|---:|',
  ...rows,
  '',
].join('\n');
if (values.write) await fs.writeFile(values.write, report);
process.stdout.write(report);
