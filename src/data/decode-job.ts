// One image's decode, on whichever thread does it: the messages between the pool
// (src/data/decode-pool.ts) and its threads (src/data/decode-worker-thread.ts), and the work itself.
// Both sides import this module and neither imports the other at run time.
import { CropCache, type CropKey } from './crop-cache.js';
import type { ImageProblemKind } from './image-problems.js';
import type { PreprocessOptions, Uint8Crop } from './preprocess.js';

export interface CacheTarget {
  dir: string;
  key: CropKey;
}

export interface WorkerDecode {
  crop: Uint8Crop;
  /** The worker could not write the cache entry (the crop is still good). */
  cacheWriteFailed: boolean;
}

export interface DecodeRequest {
  id: number;
  file: string;
  options: PreprocessOptions;
  cache?: CacheTarget;
}

export type DecodeReply =
  | { id: number; ok: true; data: Uint8Array; sourceWidth: number; sourceHeight: number; cacheWriteFailed: boolean }
  | { id: number; ok: false; kind: ImageProblemKind; detail: string };

const caches = new Map<string, CropCache>();

/** A decode worker's work, on the calling thread: `decoder`, then the cache entry. */
export async function decodeHere(
  decoder: (file: string, options: PreprocessOptions) => Promise<Uint8Crop>,
  file: string,
  options: PreprocessOptions,
  cache?: CacheTarget,
): Promise<WorkerDecode> {
  const crop = await decoder(file, options);
  let cacheWriteFailed = false;
  if (cache) {
    let entries = caches.get(cache.dir);
    if (!entries) caches.set(cache.dir, (entries = new CropCache(cache.dir)));
    await entries.put(cache.key, { data: crop.data, sourcePixels: crop.sourceWidth * crop.sourceHeight }).catch(() => (cacheWriteFailed = true));
  }
  return { crop, cacheWriteFailed };
}
