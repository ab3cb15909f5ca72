import { shardOrder } from '../distributed/shard.js';
import { joinBytes } from '../native.js';
import { seededPermutation } from '../util/prng.js';
import { augmentInto, augmentParams, augmentRng, augmentSourceResolution, resolveAugmentation, type AugmentOptions } from './augment.js';
import { BoundedQueue } from './bounded-queue.js';
import { RESIZE_MODES, type ResizeMode } from './clip-geometry.js';
import type { CropMemory } from './crop-memory.js';
import { CropTiers, type CropGroup, type CropRecipe, type SkippedImage } from './crop-tiers.js';
import type { Dataset, Sample } from './dataset.js';
import type { ImageProblemKind } from './image-problems.js';
import { normalizeInto } from './normalize.js';
import { DEFAULT_MAX_PIXELS, RESAMPLE_MODES, type PreprocessOptions, type ResampleMode, type Uint8Crop } from './preprocess.js';

export type { SkippedImage };

export interface LoaderOptions {
  batchSize: number;
  /** Order is a pure function of (seed, epoch). Default 0 and 0. */
  seed?: number;
  epoch?: number;
  shuffle?: boolean;
  /** Drop a last, smaller batch. Default false. */
  dropLast?: boolean;
  /**
   * Data parallel: this rank's part of each epoch (src/distributed/shard.ts). `batchSize` is then per
   * rank: global batch k is the single process's batch k of batchSize × worldSize, and the rank takes
   * its rank-th slice of it; `order`, `startCursor` and `Batch.cursor` are positions in that part.
   */
  shard?: { rank: number; worldSize: number };
  resolution?: number;
  /** How images become R×R (the model's image_resize_mode). Default 'shortest' (OpenAI's). */
  resizeMode?: ResizeMode;
  /** The model's image_mean/image_std for 'normalized' pixels (default OpenAI's); 'uint8' batches are
   * normalised natively with the model's own. modelPreprocessing(model.config) gives all four. */
  mean?: readonly number[];
  std?: readonly number[];
  exif?: boolean;
  /** How images are resized: 'pillow' (default, Pillow's bicubic to the bit) or 'libvips' (faster, approximate); PreprocessOptions.resample. */
  resample?: ResampleMode;
  maxPixels?: number;
  /** Cache of preprocessed crops: true (default, under cacheDir()/preprocessed), false, or via cacheDir. */
  cache?: boolean;
  cacheDir?: string;
  /**
   * Crops kept in memory between epochs: pass the same one to each epoch's loader, and an epoch after
   * the one that filled it reads no file for the crops it holds. Default: none (train() makes one).
   */
  memory?: CropMemory;
  /** Images being decoded at once (cached crops are read a batch at a time). Default: twice the cores, at least 4. */
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
   * else a quarter of the cores, at most 4 (src/data/decode-pool.ts). */
  decodeThreads?: number;
  /**
   * Training augmentation (src/data/augment.ts): true for open_clip's defaults, or options; checked
   * here, once. The cache and memory then hold each image at a source resolution a little above R
   * (augmentSourceResolution), and each batch's R×R crops are drawn from it per (seed, epoch, sample index).
   */
  augment?: boolean | AugmentOptions;
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

export interface LoaderStats {
  epoch: number;
  batches: number;
  samples: number;
  skipped: number;
  skippedByKind: Partial<Record<ImageProblemKind, number>>;
  /** The first MAX_REPORTED skipped images, with file and list line. */
  skippedImages: SkippedImage[];
  /** Crops read from the cache on disk. */
  cacheHits: number;
  /** Crops taken from `memory`. */
  memoryHits: number;
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

type Ready = { sample: Sample; index: number; crop: Uint8Array };

export function createLoader(dataset: Dataset, options: LoaderOptions): Loader {
  const batchSize = options.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const seed = options.seed ?? 0;
  const epoch = options.epoch ?? 0;
  const resolution = options.resolution ?? 224;
  const augment = resolveAugmentation(options.augment);
  // What is decoded, cached and kept in memory: the R×R crop, or with augmentation the larger source it is drawn from.
  const sourceResolution = augment ? augmentSourceResolution(resolution) : resolution;
  const recipe = cropRecipe(options, sourceResolution, augment !== undefined);
  let stats = emptyStats(epoch);
  const tiers = new CropTiers({
    recipe,
    memory: options.memory,
    cache: options.cache,
    cacheDir: options.cacheDir,
    concurrency: options.concurrency,
    decoder: options.decoder,
    decodeThreads: options.decodeThreads,
    // Through `stats` as it is then: each pass starts a new one.
    count: (counter) => void stats[counter]++,
  });
  const prefetch = options.prefetch ?? 2;
  const samples = dataset.samples;
  const order = epochOrder(samples, batchSize, seed, epoch, options);
  const batchesPerEpoch = options.dropLast ? Math.floor(order.length / batchSize) : Math.ceil(order.length / batchSize);
  const startBatch = options.startBatch ?? 0;
  const startCursor = options.startCursor ?? startBatch * batchSize;

  const plane = 3 * resolution * resolution;
  const sourcePlane = tiers.cropBytes;

  /** The crops of the samples at order[start, start + size). */
  function loadGroup(start: number, size: number): Promise<CropGroup> {
    const indices = order.subarray(start, start + size);
    return tiers.load(Array.from(indices, (index) => samples[index]!), indices);
  }

  async function makeBatch(index: number, ready: Ready[], cursor: number, whole?: Uint8Array): Promise<Batch> {
    if (augment) ({ ready, whole } = await augmentBatch(ready));
    let images: Batch['images'];
    if (options.pixels === 'uint8') {
      // A batch that is one group's whole buffer goes as it is; otherwise (images skipped before it)
      // its crops are joined on the thread pool.
      const data = whole ?? (await joinBytes(ready.map((r) => r.crop)));
      images = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), shape: [ready.length, resolution, resolution, 3] };
    } else {
      const data = new Float32Array(ready.length * plane);
      ready.forEach((r, i) => normalizeInto(r.crop, data, i * plane, options.mean, options.std));
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

  /** Each sample's R×R crop drawn from its source crop, into one new buffer: the batch's. */
  async function augmentBatch(ready: Ready[]): Promise<{ ready: Ready[]; whole: Uint8Array }> {
    const out = Buffer.allocUnsafeSlow(ready.length * plane);
    const augmented = await Promise.all(
      ready.map(async (r, i) => {
        const crop = out.subarray(i * plane, (i + 1) * plane);
        const params = augmentParams(augmentRng(seed, epoch, r.index), sourceResolution, sourceResolution, augment!);
        await augmentInto(r.crop, sourceResolution, crop, resolution, params);
        return { ...r, crop };
      }),
    );
    return { ready: augmented, whole: out };
  }

  /**
   * Loads the epoch order in groups of batchSize samples, up to two at a time (the next one loads
   * while this one is batched and handed over), and fills batches from their good samples in order,
   * refilling past skipped images from the next group.
   */
  async function produce(queue: BoundedQueue<Batch>): Promise<void> {
    const groups: Promise<CropGroup>[] = [];
    let next = startCursor;
    const refill = () => {
      while (groups.length < 2 && next < order.length) {
        const size = Math.min(batchSize, order.length - next);
        const group = loadGroup(next, size);
        // Awaited in turn; should the run end first (strict mode, a cancelled epoch), its failure is moot.
        group.catch(() => {});
        groups.push(group);
        next += size;
      }
    };
    refill();
    let ready: Ready[] = [];
    let readyFrom: Uint8Array | undefined; // the buffer all of `ready` lies in, in order from its start
    // That buffer, when it holds exactly the batch: the batch is then made without a join.
    const whole = () => (readyFrom && readyFrom.byteLength === ready.length * sourcePlane ? readyFrom : undefined);
    let index = startBatch;
    let consumed = startCursor;
    while (groups.length > 0) {
      const group = await groups.shift()!;
      for (const outcome of group.outcomes) {
        consumed++;
        if (!outcome.ok) {
          recordSkip(outcome.skipped);
          if (options.strict) throw new Error(`strict: ${outcome.skipped.message}`);
          continue;
        }
        // Still one run of the group's buffer from its start? (A decoded crop has memory of its own.)
        const slot = outcome.crop.buffer === group.buffer.buffer ? (outcome.crop.byteOffset - group.buffer.byteOffset) / sourcePlane : -1;
        readyFrom = slot === ready.length && (ready.length === 0 || readyFrom === group.buffer) ? group.buffer : undefined;
        ready.push(outcome);
        if (ready.length === batchSize) {
          const batch = await makeBatch(index++, ready, consumed, whole());
          ready = [];
          if (!(await handOver(queue, batch))) return;
        }
      }
      // Only now: a stalled consumer holds one group loading beyond the batch it blocks.
      refill();
    }
    if (ready.length > 0 && !options.dropLast) await handOver(queue, await makeBatch(index, ready, consumed, whole()));
  }

  /** Queues a batch and counts it; false once the consumer has stopped. */
  async function handOver(queue: BoundedQueue<Batch>, batch: Batch): Promise<boolean> {
    if (!(await queue.push(batch))) return false;
    stats.batches++;
    stats.samples += batch.samples.length;
    return true;
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
  return { epoch, batches: 0, samples: 0, skipped: 0, skippedByKind: {}, skippedImages: [], cacheHits: 0, memoryHits: 0, decoded: 0, cacheWriteErrors: 0 };
}

/**
 * The preprocessing every crop gets, checked here, not per image: a bad mode or statistics would
 * otherwise skip every image as undecodable.
 */
function cropRecipe(options: LoaderOptions, resolution: number, augmentSource: boolean): CropRecipe {
  const resizeMode = options.resizeMode ?? 'shortest';
  if (!RESIZE_MODES.includes(resizeMode)) throw new RangeError(`resizeMode must be one of ${RESIZE_MODES.join(', ')}, got '${String(resizeMode)}'`);
  if (options.pixels !== 'uint8') normalizeInto(new Uint8Array(0), new Float32Array(0), 0, options.mean, options.std);
  const resample = options.resample ?? 'pillow';
  if (!RESAMPLE_MODES.includes(resample)) throw new RangeError(`resample must be one of ${RESAMPLE_MODES.join(', ')}, got '${String(resample)}'`);
  return { resolution, resizeMode, exif: options.exif ?? true, resample, maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS, augmentSource };
}

/** The epoch's order of sample indices, a pure function of (seed, epoch), or this rank's part of it. */
function epochOrder(samples: readonly Sample[], batchSize: number, seed: number, epoch: number, options: LoaderOptions): Int32Array {
  const all = options.shuffle === false ? Int32Array.from(samples.keys()) : seededPermutation(samples.length, seed, epoch);
  return options.shard ? shardOrder(all, batchSize, options.shard.rank, options.shard.worldSize, options.dropLast ?? false) : all;
}
