// Where a sample's crop comes from, nearest first: the crops kept in memory between epochs
// (src/data/crop-memory.ts), the crop cache on disk (src/data/crop-cache.ts), and last a decode, on
// the decode pool's threads or with the caller's decoder on this one, which also writes the cache
// entry and is kept in memory for the next epoch. The loader asks for a group of samples at a time
// (one batch's worth) and gets each one's crop, or why it was skipped.
import os from 'node:os';

import { copyPartsInto, statFileBatch } from '../io/batched-files.js';
import { Semaphore } from '../util/semaphore.js';
import type { ResizeMode } from './clip-geometry.js';
import { CropCache, type CropKey } from './crop-cache.js';
import type { CropMemory, RememberedCrop } from './crop-memory.js';
import type { Sample } from './dataset.js';
import { decodeHere } from './decode-job.js';
import { defaultDecodeThreads, sharedDecodePool, type DecodePool } from './decode-pool.js';
import { classifyDecodeError, ImageDecodeError, type ImageProblemKind } from './image-problems.js';
import { preprocessImageUint8, type PreprocessOptions, type ResampleMode, type Uint8Crop } from './preprocess.js';

export interface SkippedImage {
  file: string;
  source: { file: string; line: number };
  kind: ImageProblemKind;
  message: string;
}

/** A sample's crop, or why it has none. `index`: the sample's index in dataset.samples (what its augmentation is keyed on). */
export type CropOutcome = { ok: true; sample: Sample; index: number; crop: Uint8Array } | { ok: false; skipped: SkippedImage };

/** A run of consecutive samples of the epoch order: one outcome per sample; crops from memory and the disk cache lie in `buffer`, slot i for the i-th sample. */
export interface CropGroup {
  buffer: Uint8Array;
  outcomes: CropOutcome[];
}

/** What makes every crop of a loader: the part of its cache key that is not the file's. */
export interface CropRecipe {
  /** The crop's side: the model's resolution, or with augmentation the larger source its crops are drawn from. */
  resolution: number;
  resizeMode: ResizeMode;
  exif: boolean;
  resample: ResampleMode;
  maxPixels: number;
  /** The crops are augmentation sources: entries of their own in the cache and in memory. */
  augmentSource: boolean;
}

/** The LoaderStats counter a crop adds to: the tier it came from, or a cache entry that could not be written. */
export type TierCounter = 'memoryHits' | 'cacheHits' | 'decoded' | 'cacheWriteErrors';

export interface CropTierOptions {
  recipe: CropRecipe;
  memory?: CropMemory;
  /** false: no disk cache; otherwise the one in cacheDir (default under cacheDir()/preprocessed). */
  cache?: boolean;
  cacheDir?: string;
  /** Images being decoded at once. Default: twice the cores, at least 4. */
  concurrency?: number;
  /** The caller's decoder, run on the main thread (no decode threads then). Default: sharp's. */
  decoder?: (file: string, options: PreprocessOptions) => Promise<Uint8Crop>;
  /** Decode worker threads (0: the main thread). Default: defaultDecodeThreads(). */
  decodeThreads?: number;
  /** Told each count as it happens: the loader's stats object is replaced on each pass. */
  count: (counter: TierCounter) => void;
}

/** What one group's memory and disk reads left in its buffer. */
interface Recalled {
  buffer: Uint8Array;
  /** Per slot: the crop taken from memory, if it was. */
  remembered: Array<RememberedCrop | undefined>;
  /** Per slot: the source's pixel count of the crop now in it; undefined where there is none (a miss). */
  sourcePixels: Array<number | undefined>;
}

export class CropTiers {
  /** Bytes of one crop, and of one slot of a group's buffer. */
  readonly cropBytes: number;
  private readonly recipe: CropRecipe;
  private readonly memory?: CropMemory;
  private readonly cache?: CropCache;
  private readonly pool?: DecodePool;
  private readonly decoder: (file: string, options: PreprocessOptions) => Promise<Uint8Crop>;
  private readonly decodes: Semaphore;
  private readonly count: (counter: TierCounter) => void;

  constructor(options: CropTierOptions) {
    const concurrency = options.concurrency ?? Math.max(4, os.availableParallelism() * 2);
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    const decodeThreads = options.decoder ? 0 : (options.decodeThreads ?? defaultDecodeThreads());
    if (!Number.isInteger(decodeThreads) || decodeThreads < 0) throw new RangeError(`decodeThreads must be a non-negative integer, got ${decodeThreads}`);
    this.recipe = options.recipe;
    this.cropBytes = 3 * options.recipe.resolution * options.recipe.resolution;
    this.decoder = options.decoder ?? preprocessImageUint8;
    this.pool = decodeThreads > 0 ? sharedDecodePool(decodeThreads) : undefined;
    this.cache = options.cache === false ? undefined : new CropCache(options.cacheDir);
    this.memory = options.memory;
    this.decodes = new Semaphore(concurrency);
    this.count = options.count;
  }

  /**
   * The crops of `samples` (`indices`: their indices in dataset.samples): stats of all files in one
   * go, crops held in memory copied and cached ones read straight into one buffer (slot i for the i-th
   * sample), the rest decoded. A warm epoch thus costs a few requests per batch, not several per
   * image, and no copy on the main thread: its batches are these buffers.
   */
  async load(samples: Sample[], indices: Int32Array): Promise<CropGroup> {
    const outcomes: Array<CropOutcome | undefined> = new Array(samples.length);
    const keys = await this.keys(samples, outcomes);
    const wanted = keys.flatMap((key, i) => (key ? [i] : []));
    const recalled = await this.recall(keys, wanted);
    const misses: Promise<void>[] = [];
    const fromDisk: Array<{ key: CropKey; data: Uint8Array; sourcePixels: number }> = [];
    for (const i of wanted) {
      const sample = samples[i]!;
      const sourcePixels = recalled.sourcePixels[i];
      if (sourcePixels === undefined) {
        misses.push(this.decode(sample, indices[i]!, keys[i]!).then((outcome) => void (outcomes[i] = outcome)));
      } else if (sourcePixels > this.recipe.maxPixels) {
        outcomes[i] = skippedOutcome(sample, new ImageDecodeError('too-large', sample.image, `${sourcePixels} pixels > maxPixels ${this.recipe.maxPixels}`));
      } else {
        const crop = recalled.buffer.subarray(i * this.cropBytes, (i + 1) * this.cropBytes);
        if (recalled.remembered[i]) this.count('memoryHits');
        else {
          this.count('cacheHits');
          if (this.memory) fromDisk.push({ key: keys[i]!, data: crop, sourcePixels });
        }
        outcomes[i] = { ok: true, sample, index: indices[i]!, crop };
      }
    }
    // Before the group's buffer becomes batches, which their consumer may change.
    await Promise.all([...misses, this.memory?.keepMany(fromDisk)]);
    return { buffer: recalled.buffer, outcomes: outcomes as CropOutcome[] };
  }

  /** Each sample's cache key from one stat of all the files; a file that cannot be an image is its outcome already. */
  private async keys(samples: Sample[], outcomes: Array<CropOutcome | undefined>): Promise<Array<CropKey | undefined>> {
    const { resolution, exif, resizeMode, resample, augmentSource } = this.recipe;
    const keys: Array<CropKey | undefined> = new Array(samples.length);
    (await statFileBatch(samples.map((s) => s.image))).forEach((stat, i) => {
      const sample = samples[i]!;
      if (stat instanceof Error) outcomes[i] = skippedOutcome(sample, stat);
      else if (!stat.isFile) outcomes[i] = skippedOutcome(sample, new ImageDecodeError('missing', sample.image, 'not a regular file'));
      else if (stat.size === 0) outcomes[i] = skippedOutcome(sample, new ImageDecodeError('empty', sample.image, '0 bytes'));
      else keys[i] = { file: sample.image, size: stat.size, mtimeMs: stat.mtimeMs, resolution, exif, resizeMode, resample, ...(augmentSource && { augmentSource: true }) };
    });
    return keys;
  }

  /** The `wanted` slots' crops from memory, else from the disk cache, into one new buffer. */
  private async recall(keys: Array<CropKey | undefined>, wanted: number[]): Promise<Recalled> {
    const size = keys.length;
    const remembered: Array<RememberedCrop | undefined> = new Array(size);
    if (this.memory) for (const i of wanted) remembered[i] = this.memory.get(keys[i]!);
    const inMemory = wanted.filter((i) => remembered[i]);
    const onDisk = this.cache ? wanted.filter((i) => !remembered[i]) : [];
    // Every slot is written before it is used (or its sample is skipped): no need to zero it.
    const buffer: Uint8Array = inMemory.length + onDisk.length > 0 ? Buffer.allocUnsafeSlow(size * this.cropBytes) : new Uint8Array(0);
    const [cached] = await Promise.all([
      this.cache ? this.cache.readInto(onDisk.map((i) => keys[i]!), buffer, onDisk) : [],
      copyPartsInto(inMemory.map((i) => remembered[i]!.data), buffer, inMemory.map((i) => i * this.cropBytes)),
    ]);
    const sourcePixels: Array<number | undefined> = new Array(size);
    for (const i of inMemory) sourcePixels[i] = remembered[i]!.sourcePixels;
    onDisk.forEach((i, j) => (sourcePixels[i] = cached[j]));
    return { buffer, remembered, sourcePixels };
  }

  /** Decodes (and caches, and remembers) one image, `concurrency` at most at once. */
  private async decode(sample: Sample, index: number, key: CropKey): Promise<CropOutcome> {
    await this.decodes.acquire();
    try {
      const target = this.cache ? { dir: this.cache.dir, key } : undefined;
      const { resolution, resizeMode, exif, resample, maxPixels } = this.recipe;
      const preprocess = { resolution, resizeMode, exif, resample, maxPixels };
      const { crop, cacheWriteFailed } = this.pool ? await this.pool.decode(sample.image, preprocess, target) : await decodeHere(this.decoder, sample.image, preprocess, target);
      this.count('decoded');
      if (cacheWriteFailed) this.count('cacheWriteErrors');
      this.memory?.keep(key, crop.data, crop.sourceWidth * crop.sourceHeight);
      // The crop stays in its own memory: copied into the group's here, it cost the main thread more
      // than the pool's join of the batch (joinBytes) does.
      return { ok: true, sample, index, crop: crop.data };
    } catch (err) {
      return skippedOutcome(sample, err);
    } finally {
      this.decodes.release();
    }
  }
}

function skippedOutcome(sample: Sample, err: unknown): CropOutcome {
  const problem = classifyDecodeError(sample.image, err);
  const where = sample.source.line > 0 ? `${sample.source.file}:${sample.source.line}: ` : '';
  return { ok: false, skipped: { file: sample.image, source: sample.source, kind: problem.kind, message: `${where}${problem.message}` } };
}
