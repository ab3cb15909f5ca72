// Test images for the data benchmarks: JPEGs (q90) made from the fixture photos at seeded random
// sizes, from a little above CLIP's 224 px to `maxWidth`, portrait and landscape. The JPEG photos are
// the sources because they are the ones scripts/pack-device.sh carries to the GPU machine.
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

import { createRng } from '../src/util/prng.js';
import { fixture } from '../test/helpers/fixtures.js';

export async function makeJpegs(dir: string, count: number, { seed, maxWidth, minWidth = 240 }: { seed: number; maxWidth: number; minWidth?: number }): Promise<string[]> {
  const sources = ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg'].map((f) => fixture('images', f));
  const rng = createRng(seed);
  // Sizes drawn in order first, so the files do not depend on how many are made at once.
  const jobs = Array.from({ length: count }, (_, i) => {
    const width = minWidth + rng.nextInt(maxWidth - minWidth);
    const height = Math.round(width * (0.6 + rng.next() * 0.9));
    return { source: sources[i % sources.length]!, width, height, file: path.join(dir, `img${String(i).padStart(5, '0')}.jpg`) };
  });
  await inParallel(jobs, ({ source, width, height, file }) => sharp(source).resize(width, height, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(file));
  return jobs.map((j) => j.file);
}

/** `make` over `items`, as many at once as the machine has cores (sharp works on its own threads). */
export async function inParallel<T>(items: T[], make: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await make(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(items.length, os.availableParallelism()) }, worker));
}
