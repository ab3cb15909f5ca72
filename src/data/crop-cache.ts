import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { readBodiesInto } from '../io/batched-files.js';
import { writeFileAtomic } from '../util/atomic.js';
import { cacheDir } from '../util/cache.js';
import type { ResizeMode } from './clip-geometry.js';
import type { ResampleMode } from './preprocess.js';

/**
 * On-disk cache of preprocessed uint8 crops, so epochs after the first skip decoding. An entry is
 * keyed by what makes the crop: absolute path, size and mtime of the file, resolution, resize mode,
 * EXIF flag, resample mode and whether it is an augmentation's source; editing or replacing an image changes its key,
 * and stale entries are simply never read again.
 *
 * File layout: 8-byte magic, u32 LE resolution, u32 LE source pixel count (to re-apply a lower
 * pixel limit without decoding), u32 LE CRC-32 of the pixels, then R*R*3 bytes of HWC RGB.
 *
 * An entry is written to a temporary file and renamed into place, without fsync: it can be made
 * again, so a crash may lose it but the checksum keeps a torn one from being read (it is a miss).
 * Two fsyncs per image (file and directory) were a fifth of the first epoch's time on the
 * development machine.
 */
const MAGIC = Buffer.from('CLIPCRP2', 'latin1');
const HEADER_BYTES = 20;

export interface CropKey {
  file: string;
  size: number;
  mtimeMs: number;
  resolution: number;
  exif: boolean;
  /** How the crop was made (the model's image_resize_mode); absent: 'shortest'. */
  resizeMode?: ResizeMode;
  /** How the crop was resized (PreprocessOptions.resample); absent: 'pillow', the default. */
  resample?: ResampleMode;
  /** The source augmentation draws its crops from (src/data/augment.ts), not a model's input: its own entries. */
  augmentSource?: boolean;
}

export interface CachedCrop {
  data: Uint8Array;
  sourcePixels: number;
}

export function defaultCropCacheDir(): string {
  return path.join(cacheDir(), 'preprocessed');
}

export class CropCache {
  /** The 256 subdirectories made so far: one mkdir each, not one per entry. */
  private readonly madeDirs = new Set<string>();

  constructor(readonly dir: string = defaultCropCacheDir()) {}

  entryPath(key: CropKey): string {
    const fields: Record<string, unknown> = { v: 2, file: path.resolve(key.file), size: key.size, mtimeMs: key.mtimeMs, resolution: key.resolution, exif: key.exif };
    // 'shortest' keeps the key it had before resize modes existed, so that existing caches stay valid;
    // any other mode is part of the key, and a crop of one mode is never read for another.
    const mode = key.resizeMode ?? 'shortest';
    if (mode !== 'shortest') fields.resizeMode = mode;
    // Crops made before the resample option were libvips' for opaque downscales: 'libvips' keeps that
    // key, and Pillow's crops (the default since) have their own, so an old entry is never read as one.
    if ((key.resample ?? 'pillow') !== 'libvips') fields.resample = key.resample ?? 'pillow';
    // Likewise only when set: an augmentation source never answers for a plain crop, nor the reverse.
    if (key.augmentSource) fields.augmentSource = true;
    const id = createHash('sha256').update(JSON.stringify(fields)).digest('hex');
    return path.join(this.dir, id.slice(0, 2), `${id}.crop`);
  }

  /**
   * The cached crops of `keys` (of one resolution R) read into dest, key i's pixels at slots[i] · R·R·3
   * bytes, off the main thread: per key the source's pixel count, or undefined for a miss (absent,
   * damaged or unreadable: a damaged entry is just a miss, and its slot holds garbage). This is the
   * warm loader's busiest path: a batch's entries land in the batch's memory, no copy made.
   */
  async readInto(keys: CropKey[], dest: Uint8Array, slots: number[]): Promise<Array<number | undefined>> {
    if (keys.length === 0) return [];
    const resolution = keys[0]!.resolution;
    if (keys.some((k) => k.resolution !== resolution)) throw new RangeError('CropCache.readInto: keys of one resolution only');
    const reads = await readBodiesInto(keys.map((k) => this.entryPath(k)), HEADER_BYTES, resolution * resolution * 3, dest, slots);
    return reads.map((r) => {
      if (!r || r instanceof Error) return undefined;
      const { header } = r;
      if (!header.subarray(0, 8).equals(MAGIC) || header.readUInt32LE(8) !== resolution || r.crc !== header.readUInt32LE(16)) return undefined;
      return header.readUInt32LE(12);
    });
  }

  async put(key: CropKey, crop: CachedCrop): Promise<void> {
    const target = this.entryPath(key);
    const dir = path.dirname(target);
    if (!this.madeDirs.has(dir)) {
      await fs.mkdir(dir, { recursive: true });
      this.madeDirs.add(dir);
    }
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt32LE(key.resolution, 8);
    header.writeUInt32LE(Math.min(crop.sourcePixels, 0xffffffff), 12);
    header.writeUInt32LE(crc32(crop.data), 16);
    const entry = Buffer.concat([header, crop.data]);
    try {
      await writeFileAtomic(target, entry, { durable: false });
    } catch (err) {
      // The directory went away since it was made (a cache cleared while the process runs): once more.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await fs.mkdir(dir, { recursive: true });
      await writeFileAtomic(target, entry, { durable: false });
    }
  }
}
