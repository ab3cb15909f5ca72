import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import type { Dataset } from '../src/data/dataset.js';
import { loadDataset } from '../src/data/load-dataset.js';
import { normalize } from '../src/data/normalize.js';
import { CropMemory } from '../src/data/crop-memory.js';
import { createLoader, type Batch, type LoaderOptions, type SkippedImage } from '../src/data/loader.js';
import { preprocessImage, preprocessImageUint8, type PreprocessOptions } from '../src/data/preprocess.js';
import { seededPermutation } from '../src/util/prng.js';
import { fixture } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

const R = 32; // small resolution keeps the test fast; the goldens test 224
const tmp = scratchDir('clip-loader-');
let root: string;
let dataset: Dataset;

before(async () => {
  root = path.join(tmp, 'ds');
  const lines: string[] = [];
  for (let i = 0; i < 14; i++) {
    const label = ['ant', 'bee', 'cat'][i % 3]!;
    const file = path.join(root, 'images', label, `${i}.png`);
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Distinct content and sizes so each sample's tensor identifies it.
    await sharp({ create: { width: 40 + i * 3, height: 30 + (i % 4) * 7, channels: 3, background: { r: i * 18, g: 255 - i * 18, b: (i * 57) % 256 } } })
      .png()
      .toFile(file);
    lines.push(`${label}/${i}`);
  }
  await fs.mkdir(path.join(root, 'meta'), { recursive: true });
  await fs.writeFile(path.join(root, 'meta', 'train.txt'), lines.join('\n') + '\n');
  await fs.writeFile(path.join(root, 'meta', 'test.txt'), '');
  dataset = await loadDataset(root, { ext: 'png' });
});

async function collect(loader: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const batch of loader) out.push(batch);
  return out;
}

function countingDecoder() {
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const decoder = async (file: string, options: PreprocessOptions) => {
    calls.push(file);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      return await preprocessImageUint8(file, options);
    } finally {
      inFlight--;
    }
  };
  return { decoder, calls, maxInFlight: () => maxInFlight };
}

const bytes = (b: Batch) => Buffer.from(b.images.data.buffer, b.images.data.byteOffset, b.images.data.byteLength);

const base = (extra: Partial<LoaderOptions> = {}): LoaderOptions => ({ batchSize: 4, resolution: R, cacheDir: path.join(tmp, 'cache-default'), ...extra });

describe('createLoader', () => {
  test('order is a pure function of (seed, epoch) and batches carry matching tensors and labels', async () => {
    const a = await collect(createLoader(dataset, base({ seed: 3, epoch: 1 })));
    const b = await collect(createLoader(dataset, base({ seed: 3, epoch: 1, concurrency: 1 })));
    const other = createLoader(dataset, base({ seed: 3, epoch: 2 }));
    assert.deepEqual(a.map((x) => x.samples.map((s) => s.image)), b.map((x) => x.samples.map((s) => s.image)));
    assert.notDeepEqual(Array.from(other.order), Array.from(createLoader(dataset, base({ seed: 3, epoch: 1 })).order));
    assert.deepEqual(Array.from(createLoader(dataset, base({ shuffle: false })).order), [...Array(14).keys()]);
    assert.deepEqual(Array.from(seededPermutation(14, 3, 1)), Array.from(createLoader(dataset, base({ seed: 3, epoch: 1 })).order));

    assert.deepEqual(a.map((x) => x.images.shape), [[4, 3, R, R], [4, 3, R, R], [4, 3, R, R], [2, 3, R, R]]);
    assert.deepEqual(a.map((x) => x.index), [0, 1, 2, 3]);
    const seen = a.flatMap((x) => x.samples.map((s) => s.image)).sort();
    assert.deepEqual(seen, dataset.samples.map((s) => s.image).sort());
    const batch = a[1]!;
    assert.deepEqual(Array.from(batch.labelIndices!), batch.samples.map((s) => dataset.classes.indexOf(s.label!)));
    const expected = await preprocessImage(batch.samples[2]!.image, { resolution: R });
    assert.deepEqual(batch.images.data.subarray(2 * 3 * R * R, 3 * 3 * R * R), expected.data);
    const dropped = await collect(createLoader(dataset, base({ seed: 3, epoch: 1, dropLast: true })));
    assert.equal(dropped.length, 3);
  });

  test('the second epoch comes from the cache: no decoder call, and corrupting the files (same size and mtime) changes nothing', async () => {
    const cacheDir = path.join(tmp, 'cache-epochs');
    // Whole-second mtimes, so restoring them below reproduces the exact key (utimes loses sub-ms digits).
    const fixedTime = new Date('2020-01-01T00:00:00Z');
    for (const s of dataset.samples) await fs.utimes(s.image, fixedTime, fixedTime);
    const first = countingDecoder();
    const epoch0 = await collect(createLoader(dataset, base({ cacheDir, epoch: 0, decoder: first.decoder })));
    assert.equal(first.calls.length, 14);
    const tensorOf = new Map<string, Float32Array | Uint8Array>();
    for (const b of epoch0) b.samples.forEach((s, i) => tensorOf.set(s.image, b.images.data.slice(i * 3 * R * R, (i + 1) * 3 * R * R)));

    const copy = path.join(tmp, 'ds-backup');
    await fs.cp(root, copy, { recursive: true });
    try {
      for (const s of dataset.samples) {
        const stat = await fs.stat(s.image);
        await fs.writeFile(s.image, Buffer.alloc(stat.size, 0x42)); // undecodable if anyone tries
        await fs.utimes(s.image, fixedTime, fixedTime);
      }
      const second = countingDecoder();
      const loader = createLoader(dataset, base({ cacheDir, epoch: 1, decoder: second.decoder }));
      const epoch1 = await collect(loader);
      assert.equal(second.calls.length, 0, 'epoch 1 must not decode');
      assert.equal(loader.stats().cacheHits, 14);
      assert.equal(loader.stats().skipped, 0);
      for (const b of epoch1) b.samples.forEach((s, i) => assert.deepEqual(b.images.data.subarray(i * 3 * R * R, (i + 1) * 3 * R * R), tensorOf.get(s.image)));
    } finally {
      await fs.rm(root, { recursive: true });
      await fs.rename(copy, root);
      for (const s of dataset.samples) await fs.utimes(s.image, fixedTime, fixedTime); // fs.cp did not keep them
    }
    // A changed file (new mtime) is a new key: decoded again, not served stale.
    const touched = dataset.samples[0]!.image;
    const later = new Date(Date.now() + 5000);
    await fs.utimes(touched, later, later);
    const third = countingDecoder();
    await collect(createLoader(dataset, base({ cacheDir, epoch: 2, decoder: third.decoder })));
    assert.deepEqual(third.calls, [touched]);
  });

  test('a torn cache entry (pixels changed, same size) is a miss: the image is decoded again, the right pixels come back', async () => {
    const cacheDir = path.join(tmp, 'cache-torn');
    const opts = base({ cacheDir, shuffle: false, pixels: 'uint8' });
    const clean = await collect(createLoader(dataset, opts));
    const entries = (await fs.readdir(cacheDir, { recursive: true })).filter((f) => f.endsWith('.crop')).map((f) => path.join(cacheDir, f));
    assert.equal(entries.length, 14);
    const torn = await fs.readFile(entries[0]!);
    torn[torn.length - 100] ^= 0xff; // one pixel byte: a write that stopped short of the end
    await fs.writeFile(entries[0]!, torn);
    const counter = countingDecoder();
    const loader = createLoader(dataset, { ...opts, decoder: counter.decoder });
    const again = await collect(loader);
    assert.equal(counter.calls.length, 1, 'only the torn entry is decoded again');
    assert.equal(loader.stats().cacheHits, 13);
    again.forEach((b, i) => assert.deepEqual(b.images.data, clean[i]!.images.data));
  });

  test('startBatch resumes with the same batches and reads nothing before them', async () => {
    const full = await collect(createLoader(dataset, base({ seed: 9, cache: false })));
    const counter = countingDecoder();
    const resumed = await collect(createLoader(dataset, base({ seed: 9, cache: false, startBatch: 2, decoder: counter.decoder })));
    assert.deepEqual(resumed.map((b) => b.index), [2, 3]);
    assert.deepEqual(resumed.map((b) => b.samples), full.slice(2).map((b) => b.samples));
    assert.deepEqual(resumed[0]!.images.data, full[2]!.images.data);
    assert.equal(counter.calls.length, 6);
    const byCursor = await collect(createLoader(dataset, base({ seed: 9, cache: false, startBatch: 3, startCursor: full[2]!.cursor })));
    assert.deepEqual(byCursor.map((b) => b.samples), full.slice(3).map((b) => b.samples));
  });

  test('decoding stays bounded: images in flight ≤ concurrency, and a stalled consumer stops the producer', async () => {
    const counter = countingDecoder();
    const loader = createLoader(dataset, base({ batchSize: 2, concurrency: 2, prefetch: 1, cache: false, decoder: counter.decoder }));
    const iterator = loader[Symbol.asyncIterator]();
    await iterator.next();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // One batch taken, one prefetched, one being assembled, plus the decode window.
    assert.ok(counter.calls.length <= 2 * 3 + 2, `decoded ${counter.calls.length} of 14 while the consumer stalled`);
    assert.ok(counter.maxInFlight() <= 2, `max in flight ${counter.maxInFlight()}`);
    await iterator.return!();
  });

  test("pixels: 'uint8' yields the same crops as bytes [n, R, R, 3], normalising to the float batches exactly", async () => {
    const floats = await collect(createLoader(dataset, base({ seed: 5 })));
    const bytes = await collect(createLoader(dataset, base({ seed: 5, pixels: 'uint8' })));
    assert.equal(bytes.length, floats.length);
    for (let b = 0; b < bytes.length; b++) {
      const images = bytes[b]!.images;
      assert.ok(images.data instanceof Uint8Array);
      assert.deepEqual(images.shape, [bytes[b]!.samples.length, R, R, 3]);
      const plane = 3 * R * R;
      for (let i = 0; i < bytes[b]!.samples.length; i++) {
        const normalised = normalize(images.data.subarray(i * plane, (i + 1) * plane));
        assert.deepEqual(normalised, floats[b]!.images.data.slice(i * plane, (i + 1) * plane));
      }
    }
  });

  test('a captions dataset yields captions and no label indices', async () => {
    const file = path.join(root, 'captions.jsonl');
    await fs.writeFile(file, dataset.samples.slice(0, 3).map((s, i) => JSON.stringify({ image: path.relative(root, s.image), caption: `caption ${i}` })).join('\n'));
    const captions = await loadDataset(file);
    const [batch] = await collect(createLoader(captions, base({ shuffle: false })));
    assert.deepEqual(batch!.captions, ['caption 0', 'caption 1', 'caption 2']);
    assert.equal(batch!.labelIndices, undefined);
  });
});

describe('createLoader on bad images', () => {
  let bad: Dataset;
  let trainTxt: string;
  before(async () => {
    const dir = path.join(tmp, 'bad');
    const images = path.join(dir, 'images', 'x');
    await fs.mkdir(images, { recursive: true });
    const jpeg = await fs.readFile(fixture('images', 'coffee.jpg'));
    const good = (i: number) => sharp({ create: { width: 20, height: 20, channels: 3, background: { r: i * 30, g: 0, b: 0 } } }).png().toFile(path.join(images, `good${i}.png`));
    for (let i = 0; i < 6; i++) await good(i);
    await fs.writeFile(path.join(images, 'empty.png'), '');
    await fs.writeFile(path.join(images, 'truncated.png'), jpeg.subarray(0, 5000));
    await fs.writeFile(path.join(images, 'text.png'), 'hello, not an image');
    await fs.copyFile(fixture('images', 'rocket.jpg'), path.join(images, 'big.png')); // 640x427: over the limit below
    // meta lists stems; the extension is added by the layout.
    const lines = ['x/good0', 'x/missing', 'x/good1', 'x/empty', 'x/truncated', 'x/good2', 'x/text', 'x/big', 'x/good3', 'x/good4', 'x/good5'];
    await fs.mkdir(path.join(dir, 'meta'));
    trainTxt = path.join(dir, 'meta', 'train.txt');
    await fs.writeFile(trainTxt, lines.join('\n'));
    await fs.writeFile(path.join(dir, 'meta', 'test.txt'), '');
    bad = await loadDataset(dir, { ext: 'png' });
  });

  test('bad images are skipped, counted and reported with file and line; batches are refilled', async () => {
    const skipped: SkippedImage[] = [];
    const loader = createLoader(bad, base({ batchSize: 3, shuffle: false, cache: false, maxPixels: 250_000, onSkip: (s) => skipped.push(s) }));
    const batches = await collect(loader);
    assert.deepEqual(batches.map((b) => b.samples.map((s) => path.basename(s.image))), [
      ['good0.png', 'good1.png', 'good2.png'],
      ['good3.png', 'good4.png', 'good5.png'],
    ]);
    const stats = loader.stats();
    assert.equal(stats.skipped, 5);
    assert.deepEqual(stats.skippedByKind, { missing: 1, empty: 1, truncated: 1, unsupported: 1, 'too-large': 1 });
    assert.deepEqual(skipped.map((s) => s.kind), ['missing', 'empty', 'truncated', 'unsupported', 'too-large']);
    assert.deepEqual(skipped.map((s) => s.source.line), [2, 4, 5, 7, 8]);
    assert.ok(skipped[0]!.message.startsWith(`${trainTxt}:2: `) && skipped[0]!.message.includes('missing.png'), skipped[0]!.message);
    assert.deepEqual(stats.skippedImages, skipped);
  });

  test('strict mode fails the run with an Error naming the file and line', async () => {
    const loader = createLoader(bad, base({ batchSize: 3, shuffle: false, cache: false, strict: true }));
    await assert.rejects(collect(loader), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /train\.txt:2: .*missing\.png.*not found/);
      return true;
    });
  });

  test('failures are not cached: a fixed file is read on the next pass', async () => {
    const cacheDir = path.join(tmp, 'cache-bad');
    const opts = base({ batchSize: 3, shuffle: false, cacheDir, maxPixels: 250_000 });
    assert.equal((await collect(createLoader(bad, opts))).flatMap((b) => b.samples).length, 6);
    const empty = bad.samples.find((s) => s.image.endsWith('empty.png'))!.image;
    await sharp({ create: { width: 20, height: 20, channels: 3, background: 'white' } }).png().toFile(empty);
    const loader = createLoader(bad, opts);
    assert.equal((await collect(loader)).flatMap((b) => b.samples).length, 7);
    assert.equal(loader.stats().decoded, 1);
    assert.equal(loader.stats().cacheHits, 6);
  });

  // Warm: the cached crops of two groups joined past the skipped images (loader.ts loadGroup).
  test('past skipped images the batches join cached crops of two groups: the same bytes as decoding gives', async () => {
    const opts = base({ batchSize: 3, shuffle: false, maxPixels: 250_000, pixels: 'uint8', cacheDir: path.join(tmp, 'cache-warm-joined') });
    const decoding = createLoader(bad, { ...opts, cache: false });
    const decoded = await collect(decoding);
    await collect(createLoader(bad, opts));
    const loader = createLoader(bad, opts);
    const warm = await collect(loader);
    assert.ok(decoding.stats().skipped >= 4, 'images were skipped'); // the test before repairs one of the five
    assert.equal(loader.stats().cacheHits, decoded.flatMap((b) => b.samples).length);
    assert.equal(loader.stats().skipped, decoding.stats().skipped);
    assert.deepEqual(warm.map((b) => b.samples.map((s) => path.basename(s.image))), decoded.map((b) => b.samples.map((s) => path.basename(s.image))));
    warm.forEach((b, i) => assert.ok(bytes(b).equals(bytes(decoded[i]!)), `batch ${i}`));
  });
});

// Warm epochs read a batch's cached crops into one buffer (loader.ts loadGroup): that buffer is the
// batch when no image before it was skipped, else the crops are joined; either way the decoded bytes.
describe('warm uint8 batches from the crop cache', () => {
  test('a batch is its group\'s buffer, no copy made, and the same bytes as decoding gives', async () => {
    const opts = base({ batchSize: 4, seed: 2, pixels: 'uint8', cacheDir: path.join(tmp, 'cache-warm-whole') });
    const decoded = await collect(createLoader(dataset, { ...opts, cache: false }));
    await collect(createLoader(dataset, opts));
    const loader = createLoader(dataset, opts);
    const warm = await collect(loader);
    assert.deepEqual(loader.stats(), { ...loader.stats(), cacheHits: 14, decoded: 0 });
    assert.deepEqual(warm.map((b) => b.images.shape), decoded.map((b) => b.images.shape));
    warm.forEach((b, i) => {
      assert.ok(bytes(b).equals(bytes(decoded[i]!)), `batch ${i}`);
      assert.equal(b.images.data.byteLength, b.images.data.buffer.byteLength, `batch ${i} is a view into a larger buffer: it was copied or shares memory`);
    });
  });

});

// Crops kept in memory between epochs (src/data/crop-memory.ts, loader.ts loadGroup): an epoch after
// the one that filled the memory reads no crop file, and its batches hold the same bytes as decoding.
describe('crops kept in memory between epochs (CropMemory)', () => {
  const uint8 = (extra: Partial<LoaderOptions> = {}) => base({ seed: 6, pixels: 'uint8', ...extra });

  test('filled by decoding: the next epoch takes every crop from memory, the disk cache deleted meanwhile, the same bytes', async () => {
    const decoded = await collect(createLoader(dataset, uint8({ cache: false })));
    const cacheDir = path.join(tmp, 'cache-memory-decoded');
    for (const decodeThreads of [0, 2]) {
      const memory = new CropMemory(1 << 30);
      const filling = createLoader(dataset, uint8({ cacheDir, memory, decodeThreads }));
      await collect(filling);
      assert.equal(filling.stats().decoded + filling.stats().cacheHits, 14);
      assert.equal(memory.size, 14);
      assert.equal(memory.bytes, 14 * 3 * R * R);
      await fs.rm(cacheDir, { recursive: true, force: true });
      const loader = createLoader(dataset, uint8({ cacheDir, memory, decodeThreads }));
      const warm = await collect(loader);
      assert.deepEqual(loader.stats(), { ...loader.stats(), memoryHits: 14, cacheHits: 0, decoded: 0 }, `decodeThreads ${decodeThreads}`);
      warm.forEach((b, i) => {
        assert.ok(bytes(b).equals(bytes(decoded[i]!)), `batch ${i}, decodeThreads ${decodeThreads}`);
        assert.equal(b.images.data.byteLength, b.images.data.buffer.byteLength, `batch ${i} is not its group's own buffer`);
      });
    }
  });

  test('filled from the disk cache, and without one; float batches too', async () => {
    const cacheDir = path.join(tmp, 'cache-memory-disk');
    await collect(createLoader(dataset, uint8({ cacheDir })));
    const memory = new CropMemory(1 << 30);
    const filling = createLoader(dataset, uint8({ cacheDir, memory }));
    const fromDisk = await collect(filling);
    assert.deepEqual(filling.stats(), { ...filling.stats(), cacheHits: 14, memoryHits: 0, decoded: 0 });
    const loader = createLoader(dataset, uint8({ cacheDir, memory }));
    (await collect(loader)).forEach((b, i) => assert.ok(bytes(b).equals(bytes(fromDisk[i]!)), `batch ${i}`));
    assert.equal(loader.stats().memoryHits, 14);

    const memoryOnly = new CropMemory(1 << 30);
    await collect(createLoader(dataset, base({ seed: 6, cache: false, memory: memoryOnly })));
    const floats = createLoader(dataset, base({ seed: 6, cache: false, memory: memoryOnly }));
    const fromMemory = await collect(floats);
    assert.deepEqual(floats.stats(), { ...floats.stats(), memoryHits: 14, cacheHits: 0, decoded: 0 });
    const reference = await collect(createLoader(dataset, base({ seed: 6, cache: false })));
    fromMemory.forEach((b, i) => assert.deepEqual(b.images.data, reference[i]!.images.data, `float batch ${i}`));
  });

  test('the budget holds: the crops that fit are kept, the rest come from the disk cache', async () => {
    const cacheDir = path.join(tmp, 'cache-memory-budget');
    const memory = new CropMemory(5 * 3 * R * R + 100);
    await collect(createLoader(dataset, uint8({ cacheDir, memory })));
    assert.equal(memory.size, 5);
    const loader = createLoader(dataset, uint8({ cacheDir, memory, epoch: 1 }));
    const mixed = await collect(loader);
    assert.deepEqual(loader.stats(), { ...loader.stats(), memoryHits: 5, cacheHits: 9, decoded: 0 });
    const decoded = await collect(createLoader(dataset, uint8({ cache: false, epoch: 1 })));
    mixed.forEach((b, i) => assert.ok(bytes(b).equals(bytes(decoded[i]!)), `batch ${i}`));
    assert.throws(() => new CropMemory(-1), /budgetBytes must be a non-negative integer/);
  });

  test('filled from the disk cache a group at a time: the budget holds there too, the same bytes', async () => {
    const cacheDir = path.join(tmp, 'cache-memory-budget-disk');
    await collect(createLoader(dataset, uint8({ cacheDir })));
    // Batches of 4: the 4 crops of the first group and 2 of the second fit, the other 8 are refused.
    const memory = new CropMemory(6 * 3 * R * R + 100);
    const filling = createLoader(dataset, uint8({ cacheDir, memory, batchSize: 4 }));
    await collect(filling);
    assert.deepEqual(filling.stats(), { ...filling.stats(), cacheHits: 14, decoded: 0 });
    assert.deepEqual([memory.size, memory.bytes, memory.refused], [6, 6 * 3 * R * R, 8]);
    const loader = createLoader(dataset, uint8({ cacheDir, memory, epoch: 1 }));
    const mixed = await collect(loader);
    assert.deepEqual(loader.stats(), { ...loader.stats(), memoryHits: 6, cacheHits: 8, decoded: 0 });
    const decoded = await collect(createLoader(dataset, uint8({ cache: false, epoch: 1 })));
    mixed.forEach((b, i) => assert.ok(bytes(b).equals(bytes(decoded[i]!)), `batch ${i}`));
  });

  test('a consumer that changes its batches does not change the memory; an edited image is decoded anew', async () => {
    // Filled from the disk cache, whose crops are read into the very buffers that become batches.
    const cacheDir = path.join(tmp, 'cache-memory-consumer');
    await collect(createLoader(dataset, uint8({ cacheDir })));
    const memory = new CropMemory(1 << 30);
    const opts = uint8({ cacheDir, memory });
    for (const b of await collect(createLoader(dataset, opts))) b.images.data.fill(0);
    for (const b of await collect(createLoader(dataset, opts))) b.images.data.fill(1);
    const decoded = await collect(createLoader(dataset, uint8({ cache: false })));
    (await collect(createLoader(dataset, opts))).forEach((b, i) => assert.ok(bytes(b).equals(bytes(decoded[i]!)), `batch ${i}`));

    // Another image under one sample's name: another size, so another key.
    const edited = path.join(tmp, 'ds-memory-edited');
    await fs.cp(root, edited, { recursive: true });
    const copy = await loadDataset(edited, { ext: 'png' });
    const memoryOfCopy = new CropMemory(1 << 30);
    await collect(createLoader(copy, uint8({ cache: false, memory: memoryOfCopy })));
    const changed = copy.samples[3]!.image;
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toFile(changed);
    const loader = createLoader(copy, uint8({ cache: false, memory: memoryOfCopy }));
    const batches = await collect(loader);
    assert.deepEqual(loader.stats(), { ...loader.stats(), memoryHits: 13, decoded: 1 });
    const crop = batches.flatMap((b) => b.samples.map((s, j) => ({ s, pixels: bytes(b).subarray(j * 3 * R * R, (j + 1) * 3 * R * R) }))).find((x) => x.s.image === changed)!;
    assert.ok(crop.pixels.equals(Buffer.from((await preprocessImageUint8(changed, { resolution: R })).data)));
  });

  test('the pixel limit applies to crops from memory as to cached ones', async () => {
    const memory = new CropMemory(1 << 30);
    await collect(createLoader(dataset, uint8({ cache: false, memory })));
    const loader = createLoader(dataset, uint8({ cache: false, memory, maxPixels: 40 * 30 }));
    const batches = await collect(loader);
    // Only the first image (40 × 30) is within the limit; the others are skipped as too large.
    assert.deepEqual(batches.flatMap((b) => b.samples.map((s) => path.basename(s.image))), ['0.png']);
    assert.equal(loader.stats().skippedByKind['too-large'], 13);
    assert.equal(loader.stats().decoded, 0);
  });
});

// The built-in decoder in worker threads (src/data/decode-pool.ts; the default from 4 cores, so
// this 2-core CI machine asks for it): the same crops, cache entries and skip reports as the main thread.
describe('decoding in worker threads (decodeThreads)', () => {
  test('the same uint8 batches as the main thread, the cache entries written by the workers read back', async () => {
    const here = await collect(createLoader(dataset, base({ seed: 4, pixels: 'uint8', cache: false, decodeThreads: 0 })));
    const cacheDir = path.join(tmp, 'cache-workers');
    const first = createLoader(dataset, base({ seed: 4, pixels: 'uint8', cacheDir, decodeThreads: 2 }));
    const workers = await collect(first);
    assert.equal(first.stats().decoded, 14);
    assert.deepEqual(workers.map((b) => b.samples), here.map((b) => b.samples));
    workers.forEach((b, i) => assert.deepEqual(b.images.data, here[i]!.images.data, `batch ${i}`));
    const second = createLoader(dataset, base({ seed: 4, pixels: 'uint8', cacheDir, decodeThreads: 2 }));
    const cached = await collect(second);
    assert.equal(second.stats().cacheHits, 14);
    assert.equal(second.stats().decoded, 0);
    cached.forEach((b, i) => assert.deepEqual(b.images.data, here[i]!.images.data, `cached batch ${i}`));
  });

  test('bad images: the same kinds, lines and messages as decoding on the main thread', async () => {
    const dir = path.join(tmp, 'bad-workers');
    await fs.mkdir(path.join(dir, 'images', 'x'), { recursive: true });
    const jpeg = await fs.readFile(fixture('images', 'coffee.jpg'));
    await sharp({ create: { width: 20, height: 20, channels: 3, background: 'red' } }).png().toFile(path.join(dir, 'images', 'x', 'good.png'));
    await fs.writeFile(path.join(dir, 'images', 'x', 'empty.png'), '');
    await fs.writeFile(path.join(dir, 'images', 'x', 'truncated.png'), jpeg.subarray(0, 5000));
    await fs.writeFile(path.join(dir, 'images', 'x', 'text.png'), 'not an image');
    await fs.copyFile(fixture('images', 'rocket.jpg'), path.join(dir, 'images', 'x', 'big.png'));
    await fs.mkdir(path.join(dir, 'meta'));
    await fs.writeFile(path.join(dir, 'meta', 'train.txt'), ['x/good', 'x/empty', 'x/truncated', 'x/text', 'x/big', 'x/gone'].join('\n'));
    await fs.writeFile(path.join(dir, 'meta', 'test.txt'), '');
    const list = await loadDataset(dir, { ext: 'png' });
    const run = async (decodeThreads: number) => {
      const skipped: SkippedImage[] = [];
      const batches = await collect(createLoader(list, base({ batchSize: 2, shuffle: false, cache: false, maxPixels: 250_000, decodeThreads, onSkip: (s) => skipped.push(s) })));
      return { samples: batches.flatMap((b) => b.samples.map((s) => s.image)), skipped };
    };
    const [here, workers] = [await run(0), await run(2)];
    assert.deepEqual(workers.skipped.map((s) => s.kind), ['empty', 'truncated', 'unsupported', 'too-large', 'missing']);
    assert.deepEqual(workers.samples, here.samples);
    // libvips' own error text varies between runs (it is shared between its threads): compare up to
    // the kind's description, "list:line: file: image file is truncated".
    const shape = (s: SkippedImage) => ({ ...s, message: s.message.split(': ').slice(0, 3).join(': ') });
    assert.deepEqual(workers.skipped.map(shape), here.skipped.map(shape));
  });

  test('decodeThreads must be a non-negative integer', () => {
    assert.throws(() => createLoader(dataset, base({ decodeThreads: -1 })), /decodeThreads must be a non-negative integer, got -1/);
  });
});

test('a decode worker that dies hands its images to the main thread, with a warning, instead of skipping them', async () => {
  const { DecodePool } = await import('../src/data/decode-pool.js');
  const { decodeHere } = await import('../src/data/decode-job.js');
  const fallbackFiles: string[] = [];
  const pool = new DecodePool(
    1,
    (file, options, cache) => {
      fallbackFiles.push(file);
      return decodeHere(preprocessImageUint8, file, options, cache);
    },
    new URL('./no-such-worker.js', import.meta.url), // the worker fails to start
  );
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  try {
    const file = dataset.samples[0]!.image;
    const [a, b] = await Promise.all([pool.decode(file, { resolution: R }), pool.decode(dataset.samples[1]!.image, { resolution: R })]);
    assert.deepEqual(a.crop.data, (await preprocessImageUint8(file, { resolution: R })).data);
    assert.equal(b.crop.data.length, 3 * R * R);
    await pool.decode(dataset.samples[2]!.image, { resolution: R }); // after the failure: straight to the main thread
    assert.deepEqual(fallbackFiles, dataset.samples.slice(0, 3).map((s) => s.image));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings.filter((w) => /decode worker failed/.test(w)).length, 1);
  } finally {
    process.off('warning', onWarning);
  }
});
