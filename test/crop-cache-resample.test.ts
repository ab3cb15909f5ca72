import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { CropCache } from '../src/data/crop-cache.js';
import { CropMemory } from '../src/data/crop-memory.js';
import type { Dataset } from '../src/data/dataset.js';
import { createLoader, type Batch, type LoaderOptions } from '../src/data/loader.js';
import { preprocessImageUint8, type ResampleMode } from '../src/data/preprocess.js';
import { ConfigError, resolveConfig } from '../src/train/config.js';
import { repoRoot } from './helpers/fixtures.js';

/**
 * Issue #22 item 6: the crop cache (disk and memory) is keyed by the resample mode, so switching
 * between Pillow's resize and libvips' never serves the other mode's crops.
 */

const R = 64;
let tmp = '';
let dataset: Dataset;

/** Hard-edged noise, where libvips' cubic and Pillow's bicubic disagree. */
async function noisyPng(file: string, width: number, height: number, seed: number): Promise<void> {
  const data = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (s >>> 16) & 0x80 ? 255 : 0;
  }
  await sharp(data, { raw: { width, height, channels: 3 } }).png().toFile(file);
}

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-cache-resample-'));
  const files = [path.join(tmp, 'a.png'), path.join(tmp, 'b.png'), path.join(tmp, 'c.png')];
  await noisyPng(files[0]!, 225, 1000, 1);
  await noisyPng(files[1]!, 300, 200, 2);
  await noisyPng(files[2]!, 500, 131, 3);
  dataset = {
    root: tmp,
    format: 'folder',
    kind: 'labels',
    classes: ['x'],
    samples: files.map((image) => ({ image, label: 'x', labelIndex: 0, source: { file: image, line: 0 } })),
    problems: [],
  };
});

after(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

async function pixelsBySample(options: Partial<LoaderOptions>): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const loader = createLoader(dataset, { batchSize: 2, resolution: R, shuffle: false, pixels: 'uint8', cache: false, ...options });
  for await (const batch of loader as AsyncIterable<Batch>) {
    const plane = R * R * 3;
    batch.samples.forEach((s, i) => out.set(s.image, new Uint8Array(batch.images.data.slice(i * plane, (i + 1) * plane).buffer)));
  }
  assert.equal(out.size, dataset.samples.length);
  return out;
}

describe('the crop cache is keyed by the resample mode', () => {
  test('switching modes through one disk cache and one memory serves each mode its own crops', async () => {
    const expected = new Map<ResampleMode, Map<string, Uint8Array>>();
    for (const resample of ['pillow', 'libvips'] as const) {
      const crops = new Map<string, Uint8Array>();
      for (const s of dataset.samples) crops.set(s.image, (await preprocessImageUint8(s.image, { resolution: R, resample })).data);
      expected.set(resample, crops);
    }
    // Otherwise the test could not tell the modes apart.
    for (const s of dataset.samples) assert.notDeepEqual(expected.get('pillow')!.get(s.image), expected.get('libvips')!.get(s.image));

    for (const order of [['pillow', 'libvips'], ['libvips', 'pillow']] as const) {
      const cacheDir = path.join(tmp, `cache-${order[0]}-first`);
      const memory = new CropMemory(64 * 2 ** 20);
      // Each mode written first, then read back through the disk cache alone and through memory.
      for (const resample of [...order, ...order]) {
        assert.deepEqual(await pixelsBySample({ resample, cache: true, cacheDir }), expected.get(resample), `disk, ${resample}, ${order.join(' then ')}`);
        assert.deepEqual(await pixelsBySample({ resample, cache: true, cacheDir, memory }), expected.get(resample), `memory, ${resample}, ${order.join(' then ')}`);
      }
      assert.equal(memory.size, 2 * dataset.samples.length, 'memory holds each mode\'s crops under their own keys');
    }
  });

  test("'libvips' keeps the key crops had before the option (they were libvips'); Pillow's default has its own", () => {
    const cache = new CropCache(path.join(tmp, 'keys'));
    const key = { file: path.join(tmp, 'a.png'), size: 10, mtimeMs: 5, resolution: R, exif: true };
    const id = createHash('sha256').update(JSON.stringify({ v: 2, file: key.file, size: 10, mtimeMs: 5, resolution: R, exif: true })).digest('hex');
    assert.equal(cache.entryPath({ ...key, resample: 'libvips' }), path.join(cache.dir, id.slice(0, 2), `${id}.crop`));
    assert.notEqual(cache.entryPath({ ...key, resample: 'pillow' }), cache.entryPath({ ...key, resample: 'libvips' }));
    assert.equal(cache.entryPath(key), cache.entryPath({ ...key, resample: 'pillow' }), "absent means the default, 'pillow'");
  });

  test('decode worker threads (which load the addon themselves) make the same crops in both modes', async () => {
    for (const resample of ['pillow', 'libvips'] as const) {
      const expected = new Map<string, Uint8Array>();
      for (const s of dataset.samples) expected.set(s.image, (await preprocessImageUint8(s.image, { resolution: R, resample })).data);
      assert.deepEqual(await pixelsBySample({ resample, decodeThreads: 2 }), expected, resample);
    }
  });

  test('an unknown mode is refused when the loader is made, not per image', () => {
    assert.throws(() => createLoader(dataset, { batchSize: 2, resample: 'nearest' as never }), /resample must be one of pillow, libvips/);
  });
});

describe('the training option resample', () => {
  test("config key: 'pillow' by default, 'libvips' kept, anything else refused naming the key", () => {
    assert.equal(resolveConfig({ data: 'd', out: 'o' }).resample, 'pillow');
    assert.equal(resolveConfig({ data: 'd', out: 'o', resample: 'libvips' }).resample, 'libvips');
    assert.throws(
      () => resolveConfig({ data: 'd', out: 'o', resample: 'bilinear' } as never),
      (err: unknown) => err instanceof ConfigError && /^resample: must be one of pillow, libvips/m.test(err.problems.join('\n')),
    );
  });

  test('clip-native train --resample reaches the configuration; an unknown mode is refused', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'train', '--data', 'd', '--out', 'o', ...args, '--print-config'], { encoding: 'utf8' });
    assert.equal(JSON.parse(cli().stdout).resample, 'pillow');
    assert.equal(JSON.parse(cli('--resample', 'libvips').stdout).resample, 'libvips');
    const bad = cli('--resample', 'lanczos');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--resample/);
  });
});
