// Preprocessed crops kept in this process's memory between epochs, up to a byte budget, so that a warm
// epoch opens no file. Reading the crop cache costs CPU per image (open, read, CRC, close;
// bench/results/loader-cpu.md), and on the GPU machines the warm loader waited on its files with its
// main thread mostly idle (docs/performance.md), while a copy from memory is a memcpy on the pool.
import os from 'node:os';

import { copyPartsInto } from '../io/batched-files.js';
import type { CropKey } from './crop-cache.js';

export interface RememberedCrop {
  data: Uint8Array;
  /** The source image's pixel count, to apply a pixel limit without decoding. */
  sourcePixels: number;
}

/** Bytes a training run keeps by default: a quarter of the memory (the container's limit where there
 * is one), at most half of what is free now. */
export function defaultCropMemoryBudget(): number {
  const limit = process.constrainedMemory?.() || 0;
  const total = limit > 0 ? Math.min(limit, os.totalmem()) : os.totalmem();
  return Math.floor(Math.min(total / 4, os.freemem() / 2));
}

export class CropMemory {
  private readonly crops = new Map<string, RememberedCrop>();
  private held = 0;
  private refusals = 0;

  constructor(readonly budgetBytes: number = defaultCropMemoryBudget()) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) throw new RangeError(`CropMemory: budgetBytes must be a non-negative integer, got ${budgetBytes}`);
  }

  /** Bytes of crops held. */
  get bytes(): number {
    return this.held;
  }

  /** Crops held. */
  get size(): number {
    return this.crops.size;
  }

  /** Crops not kept for want of room (each time one was offered). */
  get refused(): number {
    return this.refusals;
  }

  get(key: CropKey): RememberedCrop | undefined {
    return this.crops.get(memoryKey(key));
  }

  /**
   * Keeps a copy of `data` (the caller's memory may become a batch that its consumer changes) if the
   * budget has room for it. Nothing is evicted: every epoch visits every sample, so a full memory
   * keeps the same crops rather than trading them for others.
   */
  keep(key: CropKey, data: Uint8Array, sourcePixels: number): boolean {
    const id = memoryKey(key);
    if (this.crops.has(id)) return true;
    if (!this.admits(data.byteLength)) return false;
    // A copy, not data.slice(): on a Buffer (the loader's batch buffers are) slice is a view.
    this.crops.set(id, { data: new Uint8Array(data), sourcePixels });
    this.held += data.byteLength;
    return true;
  }

  /**
   * keep() for a group of crops, copied on the thread pool into one new block: the epoch that fills
   * memory from the disk cache otherwise spent the main thread on each crop (an allocation and its page
   * faults, then the copy) and held its loader back (docs/performance.md; bench/results/gpu-h100.md,
   * run 3). The crops that fit the budget are kept, in order; the
   * others are refused. They are held once the copy is done.
   */
  async keepMany(crops: Array<{ key: CropKey; data: Uint8Array; sourcePixels: number }>): Promise<void> {
    const fresh: Array<{ id: string; data: Uint8Array; sourcePixels: number; offset: number }> = [];
    let bytes = 0;
    for (const { key, data, sourcePixels } of crops) {
      const id = memoryKey(key);
      if (this.crops.has(id) || !this.admits(data.byteLength, bytes)) continue;
      fresh.push({ id, data, sourcePixels, offset: bytes });
      bytes += data.byteLength;
    }
    if (fresh.length === 0) return;
    // Counted now, so that groups loading at the same time share the budget.
    this.held += bytes;
    // Large enough to come from fresh pages: the copy on the pool, not this thread, touches them.
    const block = new Uint8Array(bytes);
    try {
      await copyPartsInto(fresh.map((c) => c.data), block, fresh.map((c) => c.offset));
    } catch (err) {
      this.held -= bytes;
      throw err;
    }
    for (const c of fresh) this.crops.set(c.id, { data: block.subarray(c.offset, c.offset + c.data.byteLength), sourcePixels: c.sourcePixels });
  }

  /** Whether `bytes` more fit the budget beside `pending` bytes about to be held; a refusal is counted if not. */
  private admits(bytes: number, pending = 0): boolean {
    if (this.held + pending + bytes <= this.budgetBytes) return true;
    this.refusals++;
    return false;
  }
}

/** What makes a crop, as the disk cache's key (an edited file has another size or mtime). */
function memoryKey(key: CropKey): string {
  return `${key.resolution}:${key.resizeMode ?? 'shortest'}:${key.resample ?? 'pillow'}:${key.exif ? 1 : 0}:${key.augmentSource ? 'aug' : 'crop'}:${key.size}:${key.mtimeMs}:${key.file}`;
}
