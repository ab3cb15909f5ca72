// Test images for the data benchmarks: JPEGs (q90) made from the fixture photos at seeded random
// sizes, from a little above CLIP's 224 px to `maxWidth`, portrait and landscape. The JPEG photos are
// the sources because they are the ones scripts/pack-device.sh carries to the GPU machine.
import path from 'node:path';
import sharp from 'sharp';

import { createRng } from '../src/util/prng.js';
import { fixture } from '../test/helpers/fixtures.js';

export async function makeJpegs(dir: string, count: number, { seed, maxWidth }: { seed: number; maxWidth: number }): Promise<string[]> {
  const sources = ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg'].map((f) => fixture('images', f));
  const rng = createRng(seed);
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const width = 240 + rng.nextInt(maxWidth - 240);
    const height = Math.round(width * (0.6 + rng.next() * 0.9));
    const file = path.join(dir, `img${String(i).padStart(5, '0')}.jpg`);
    await sharp(sources[i % sources.length]!).resize(width, height, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(file);
    files.push(file);
  }
  return files;
}
