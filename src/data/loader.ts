import os from 'node:os';
import { statFile } from '../io/batched-files.js';
import { joinBytes } from '../native.js';
import { seededPermutation } from '../util/prng.js';
import { BoundedQueue } from './bounded-queue.js';
import { CropCache } from './crop-cache.js';
import { decodeHere, defaultDecodeThreads, sharedDecodePool } from './decode-workers.js';
import type { Dataset, Sample } from './dataset.js';
import { classifyDecodeError, ImageDecodeError, type ImageProblemKind } from './image-problems.js';
import { normalizeInto } from './normalize.js';
import { DEFAULT_MAX_PIXELS, preprocessImageUint8, type PreprocessOptions, type Uint8Crop } from './preprocess.js';

export interface LoaderOptions {
  batchSize: number;
  /** Order is a pure function of (seed, epoch). Default 0 and 0. */
  seed?: number;
  epoch?: number;
  shuffle?: boolean;
  /** Drop a last, smaller batch. Default false. */
  dropLast?: boolean;
  resolution?: number;
  exif?: boolean;
  maxPixels?: number;
  /** Cache of preprocessed crops: true (default, under cacheDir()/preprocessed), false, or via cacheDir. */
  cache?: boolean;
  cacheDir?: string;
  /** Images being read/decoded at once. */
  concurrency?: number;
  /** Ready batches held ahead of the consumer. */
  prefetch?: number;
  /** Fail on the first bad image instead of skipping it. */
  strict?: boolean;
  /** Resume: the first batch to produce; earlier ones are skipped without reading any image. */
  startBatch?: number;
  /**
   * Resume exactly: the epoch-order position to start from (a batch's `cursor`). Needed only when
   * images were skipped before the resume point; otherwise startBatch * batchSize is the same.
   */
  startCursor?: number;
  onSkip?: (skipped: SkippedImage) => void;
  /**
   * 'normalized' (default): float32 [n, 3, R, R] ready for the model. 'uint8': the RGB crops as bytes,
   * [n, R, R, 3], a quarter of the memory and transfer; the native side normalises them identically.
   */
  pixels?: 'normalized' | 'uint8';
  /** Replaces the sharp decoder (tests count calls through it; other decoders can plug in). It runs on
   * the main thread; the built-in one runs in `decodeThreads` worker threads. */
  decoder?: (file: string, options: PreprocessOptions) => Promise<Uint8Crop>;
  /** Worker threads for decoding and cache writes (0: the main thread). Default: none below 4 cores,
   * else a quarter of the cores, at most 4 (src/data/decode-workers.ts). */
  decodeThreads?: number;
}

export interface Batch {
  index: number;
  images: { data: Float32Array; shape: [number, 3, number, number] } | { data: Uint8Array; shape: [number, number, number, 3] };
  samples: Sample[];
  labelIndices: Int32Array | undefined;
  captions?: string[];
  /** Position in the epoch order just after this batch's last sample (for startCursor). */
  cursor: number;
}

export interface SkippedImage {
  file: string;
  source: { file: string; line: number };
  kind: ImageProblemKind;
  message: string;
}

export interface LoaderStats {
  epoch: number;
  batches: number;
  samples: number;
  skipped: number;
  skippedByKind: Partial<Record<ImageProblemKind, number>>;
  /** The first MAX_REPORTED skipped images, with file and list line. */
  skippedImages: SkippedImage[];
  cacheHits: number;
  decoded: number;
  cacheWriteErrors: number;
}

export interface Loader extends AsyncIterable<Batch> {
  /** Batches in a full epoch if no image is skipped. */
  readonly batchesPerEpoch: number;
  /** The epoch's sample order (indices into dataset.samples). */
  readonly order: Int32Array;
  /** Counts of the latest pass; complete once iteration has ended. */
  stats(): LoaderStats;
}

const MAX_REPORTED = 1000;

type Outcome = { ok: true; sample: Sample; crop: Uint8Array } | { ok: false; skipped: SkippedImage };

export function createLoader(dataset: Dataset, options: LoaderOptions): Loader {
  const batchSize = options.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const seed = options.seed ?? 0;
  const epoch = options.epoch ?? 0;
  const resolution = options.resolution ?? 224;
  const exif = options.exif ?? true;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const concurrency = options.concurrency ?? Math.max(4, os.availableParallelism() * 2);
  const prefetch = options.prefetch ?? 2;
  const decoder = options.decoder ?? preprocessImageUint8;
  const decodeThreads = options.decoder ? 0 : (options.decodeThreads ?? defaultDecodeThreads());
  if (!Number.isInteger(decodeThreads) || decodeThreads < 0) throw new RangeError(`decodeThreads must be a non-negative integer, got ${decodeThreads}`);
  const pool = decodeThreads > 0 ? sharedDecodePool(decodeThreads) : undefined;
  const cache = options.cache === false ? undefined : new CropCache(options.cacheDir);
  const samples = dataset.samples;
  const order = options.shuffle === false ? Int32Array.from(samples.keys()) : seededPermutation(samples.length, seed, epoch);
  const batchesPerEpoch = options.dropLast ? Math.floor(samples.length / batchSize) : Math.ceil(samples.length / batchSize);
  const startBatch = options.startBatch ?? 0;
  const startCursor = options.startCursor ?? startBatch * batchSize;
  let stats = emptyStats(epoch);

  async function loadOne(sample: Sample): Promise<Outcome> {
    try {
      const stat = await statFile(sample.image).catch((err: unknown) => {
        throw classifyDecodeError(sample.image, err);
      });
      if (!stat.isFile) throw new ImageDecodeError('missing', sample.image, 'not a regular file');
      if (stat.size === 0) throw new ImageDecodeError('empty', sample.image, '0 bytes');
      const key = { file: sample.image, size: stat.size, mtimeMs: stat.mtimeMs, resolution, exif };
      const cached = await cache?.get(key);
      if (cached) {
        if (cached.sourcePixels > maxPixels) throw new ImageDecodeError('too-large', sample.image, `${cached.sourcePixels} pixels > maxPixels ${maxPixels}`);
        stats.cacheHits++;
        return { ok: true, sample, crop: cached.data };
      }
      const target = cache ? { dir: cache.dir, key } : undefined;
      const preprocess = { resolution, exif, maxPixels };
      const { crop, cacheWriteFailed } = pool ? await pool.decode(sample.image, preprocess, target) : await decodeHere(decoder, sample.image, preprocess, target);
      stats.decoded++;
      if (cacheWriteFailed) stats.cacheWriteErrors++;
      return { ok: true, sample, crop: crop.data };
    } catch (err) {
      const problem = classifyDecodeError(sample.image, err);
      const where = sample.source.line > 0 ? `${sample.source.file}:${sample.source.line}: ` : '';
      return { ok: false, skipped: { file: sample.image, source: sample.source, kind: problem.kind, message: `${where}${problem.message}` } };
    }
  }

  async function makeBatch(index: number, ready: Array<{ sample: Sample; crop: Uint8Array }>, cursor: number): Promise<Batch> {
    const plane = 3 * resolution * resolution;
    let images: Batch['images'];
    if (options.pixels === 'uint8') {
      // Joined on the thread pool: on the main thread the copy into fresh memory was the largest item
      // of a warm epoch (bench/loader.ts).
      const joined = await joinBytes(ready.map((r) => r.crop));
      const data = new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength);
      images = { data, shape: [ready.length, resolution, resolution, 3] };
    } else {
      const data = new Float32Array(ready.length * plane);
      ready.forEach((r, i) => normalizeInto(r.crop, data, i * plane));
      images = { data, shape: [ready.length, 3, resolution, resolution] };
    }
    const batchSamples = ready.map((r) => r.sample);
    const batch: Batch = {
      index,
      images,
      samples: batchSamples,
      labelIndices: dataset.kind === 'labels' ? Int32Array.from(batchSamples, (s) => s.labelIndex ?? -1) : undefined,
      cursor,
    };
    if (dataset.kind === 'captions') batch.captions = batchSamples.map((s) => s.caption ?? '');
    return batch;
  }

  /** Decodes in order with a window of `concurrency` in flight; refills a batch past skipped images. */
  async function produce(queue: BoundedQueue<Batch>): Promise<void> {
    const window: Promise<Outcome>[] = [];
    let next = startCursor;
    const refill = () => {
      while (window.length < concurrency && next < order.length) window.push(loadOne(samples[order[next++]!]!));
    };
    refill();
    let ready: Array<{ sample: Sample; crop: Uint8Array }> = [];
    let index = startBatch;
    let consumed = startCursor;
    while (window.length > 0) {
      const outcome = await window.shift()!;
      consumed++;
      refill();
      if (!outcome.ok) {
        recordSkip(outcome.skipped);
        if (options.strict) throw new Error(`strict: ${outcome.skipped.message}`);
        continue;
      }
      ready.push(outcome);
      if (ready.length === batchSize) {
        const batch = await makeBatch(index++, ready, consumed);
        ready = [];
        if (!(await queue.push(batch))) return;
        stats.batches++;
        stats.samples += batch.samples.length;
      }
    }
    if (ready.length > 0 && !options.dropLast && (await queue.push(await makeBatch(index, ready, consumed)))) {
      stats.batches++;
      stats.samples += ready.length;
    }
  }

  function recordSkip(skipped: SkippedImage): void {
    stats.skipped++;
    stats.skippedByKind[skipped.kind] = (stats.skippedByKind[skipped.kind] ?? 0) + 1;
    if (stats.skippedImages.length < MAX_REPORTED) stats.skippedImages.push(skipped);
    options.onSkip?.(skipped);
  }

  return {
    batchesPerEpoch,
    order,
    stats: () => structuredClone(stats),
    async *[Symbol.asyncIterator]() {
      stats = emptyStats(epoch);
      const queue = new BoundedQueue<Batch>(prefetch);
      produce(queue).then(
        () => queue.close(),
        (err: unknown) => queue.fail(err),
      );
      try {
        for (;;) {
          const item = await queue.shift();
          if (item.done) return;
          yield item.value;
        }
      } finally {
        queue.cancel(); // a consumer that breaks out stops the producer at its next batch
      }
    },
  };
}

function emptyStats(epoch: number): LoaderStats {
  return { epoch, batches: 0, samples: 0, skipped: 0, skippedByKind: {}, skippedImages: [], cacheHits: 0, decoded: 0, cacheWriteErrors: 0 };
}
