// The check of a split's image files before training: what can be known cheaply is known before the
// first step, so that a dataset of unreadable files stops the run instead of training on nothing.
// Per file: a stat (missing, not a file, 0 bytes), libvips' header (a format sharp reads, a size
// within maxPixels), its last bytes (the end marker of a JPEG, PNG or GIF, a WebP's length), and
// only where those look cut short, a full decode.
import { promises as fs } from 'node:fs';
import sharp from 'sharp';

import { statFileBatch } from '../io/batched-files.js';
import { Semaphore } from '../util/semaphore.js';
import { classifyDecodeError, ImageDecodeError, lacksEndMarker } from './image-problems.js';
import { DEFAULT_MAX_PIXELS, preprocessImageUint8, type PreprocessOptions } from './preprocess.js';

export interface CheckImagesOptions extends PreprocessOptions {
  /** Files open at once. Default 16. */
  concurrency?: number;
}

const HEAD = 16;
const TAIL = 64;

type Signature = 'jpeg' | 'png' | 'gif' | 'webp';

function signature(head: Uint8Array): Signature | undefined {
  const starts = (...sig: number[]) => sig.every((b, i) => head[i] === b);
  if (starts(0xff, 0xd8, 0xff)) return 'jpeg';
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && Buffer.from(head.subarray(8, 12)).toString('latin1') === 'WEBP') return 'webp';
  return undefined;
}

/**
 * The problem of each distinct file of `files` that cannot be an image the loader decodes (missing,
 * empty, not an image format sharp reads, cut short); a file not in the result looked fine. Found
 * here: every missing, empty and unsupported file and every JPEG, PNG, GIF or WebP cut short. Not
 * found (the first epoch's decode finds them): a file whose header is good and whose data is not.
 */
export async function checkImageFiles(files: Iterable<string>, options: CheckImagesOptions = {}): Promise<Map<string, ImageDecodeError>> {
  const distinct = [...new Set(files)];
  const problems = new Map<string, ImageDecodeError>();
  const toRead: Array<{ file: string; size: number }> = [];
  (await statFileBatch(distinct)).forEach((stat, i) => {
    const file = distinct[i]!;
    if (stat instanceof Error) problems.set(file, classifyDecodeError(file, stat));
    else if (!stat.isFile) problems.set(file, new ImageDecodeError('missing', file, 'not a regular file'));
    else if (stat.size === 0) problems.set(file, new ImageDecodeError('empty', file, '0 bytes'));
    else toRead.push({ file, size: stat.size });
  });
  const gate = new Semaphore(options.concurrency ?? 16);
  await Promise.all(
    toRead.map(async ({ file, size }) => {
      await gate.acquire();
      try {
        const problem = await checkFile(file, size, options);
        if (problem) problems.set(file, problem);
      } finally {
        gate.release();
      }
    }),
  );
  return problems;
}

async function checkFile(file: string, size: number, options: PreprocessOptions): Promise<ImageDecodeError | undefined> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  // libvips' header reader: whether sharp reads the format at all, and the image's size.
  let format: string | undefined;
  try {
    const meta = await sharp(file, { limitInputPixels: false, failOn: 'truncated' }).metadata();
    if (!meta.width || !meta.height) return new ImageDecodeError('undecodable', file, 'no image size in the header');
    if (meta.width * meta.height > maxPixels) {
      return new ImageDecodeError('too-large', file, `${meta.width}x${meta.height} = ${meta.width * meta.height} pixels > maxPixels ${maxPixels}`);
    }
    format = meta.format;
  } catch (err) {
    return classifyDecodeError(file, err);
  }
  if (format !== 'jpeg' && format !== 'png' && format !== 'gif' && format !== 'webp') return undefined;
  // The header is good; is the end there? Only a file that looks cut short is decoded here.
  const head = new Uint8Array(Math.min(HEAD, size));
  const tail = new Uint8Array(Math.min(TAIL, size));
  try {
    const handle = await fs.open(file, 'r');
    try {
      await handle.read(head, 0, head.length, 0);
      await handle.read(tail, 0, tail.length, size - tail.length);
    } finally {
      await handle.close();
    }
  } catch (err) {
    return classifyDecodeError(file, err);
  }
  const kind = signature(head);
  if (kind === undefined) return undefined;
  const joined = new Uint8Array(head.length + tail.length);
  joined.set(head);
  joined.set(tail, head.length);
  const riffSize = kind === 'webp' && head.length >= 8 ? Buffer.from(head).readUInt32LE(4) + 8 : 0;
  const suspect = kind === 'webp' ? size < riffSize : lacksEndMarker(joined);
  if (!suspect) return undefined;
  // No end marker: most likely cut short, but some writers pad the end; the decode decides.
  try {
    await preprocessImageUint8(file, { ...options, maxPixels });
    return undefined;
  } catch (err) {
    return classifyDecodeError(file, err);
  }
}
