// File stats and reads for the data loader, many files per request to the addon
// (native/io/file_batch.h), a few requests at once so that several pool threads share a batch's files.
// A warm loader asks for a training batch's files together: one promise per chunk of files, not four
// file requests per image, and the cached crops land in the batch's own memory (as do the crops it
// holds in memory, copied there the same way).
import os from 'node:os';
import { getSystemErrorMap } from 'node:util';

import { copyBytesInto, readFilesInto, statFiles } from '../native.js';

const { ENOENT } = os.constants.errno;

export interface FileInfo {
  isFile: boolean;
  size: number;
  /** As fs.stat's mtimeMs (the same arithmetic on the same seconds and nanoseconds). */
  mtimeMs: number;
}

export interface BodyRead {
  /** The file's first headerBytes bytes. */
  header: Buffer;
  /** CRC-32 (zlib's) of the body, which is in dest. */
  crc: number;
}

let errorNames: Map<number, [string, string]> | undefined;

/** An Error shaped as Node's fs errors (code, errno, syscall, path), so callers classify it alike. */
function fsError(errno: number, syscall: string, file: string): NodeJS.ErrnoException {
  errorNames ??= getSystemErrorMap(); // built anew by each call
  const [code, description] = errorNames.get(-errno) ?? [`E${errno}`, 'unknown error'];
  return Object.assign(new Error(`${code}: ${description}, ${syscall} '${file}'`), { code, errno: -errno, syscall, path: file });
}

const PARALLEL = Math.max(2, Math.min(8, Math.floor(os.availableParallelism() / 2)));
const MIN_CHUNK = 16;

/** `run` over `items` in up to PARALLEL chunks at once (each one pool thread), results in order. */
async function inChunks<T, R>(items: T[], run: (chunk: T[], from: number) => Promise<R[]>): Promise<R[]> {
  const size = Math.max(MIN_CHUNK, Math.ceil(items.length / PARALLEL));
  const chunks: Promise<R[]>[] = [];
  for (let from = 0; from < items.length; from += size) chunks.push(run(items.slice(from, from + size), from));
  return (await Promise.all(chunks)).flat();
}

/** fs.stat of each path (an fs-shaped Error where it fails). */
export function statFileBatch(paths: string[]): Promise<Array<FileInfo | NodeJS.ErrnoException>> {
  return inChunks(paths, async (chunk) => {
    const r = await statFiles(chunk);
    return chunk.map((file, i) => {
      if (r.errors[i] !== 0) return fsError(r.errors[i]!, 'stat', file);
      return { isFile: r.regular[i] === 1, size: r.sizes[i]!, mtimeMs: r.mtimeSec[i]! * 1e3 + r.mtimeNsec[i]! / 1e6 };
    });
  });
}

/**
 * Files of exactly headerBytes + bodyBytes: file i's body into dest at slots[i] · bodyBytes, its
 * header and the body's CRC-32 returned. undefined for a file of another length or none (a cache's
 * usual miss: no Error is made for it; its slot then holds garbage); an fs-shaped Error where it
 * cannot be opened or read. `dest` must not be touched until this settles.
 */
export function readBodiesInto(
  paths: string[],
  headerBytes: number,
  bodyBytes: number,
  dest: Uint8Array,
  slots: number[],
): Promise<Array<BodyRead | undefined | Error>> {
  return inChunks(paths, async (chunk, from) => {
    const r = await readFilesInto(chunk, headerBytes, bodyBytes, dest, Int32Array.from(slots.slice(from, from + chunk.length)));
    return chunk.map((file, i) => {
      const errno = r.errors[i]!;
      if (errno === -1 || errno === ENOENT) return undefined;
      if (errno !== 0) return fsError(errno, 'open', file);
      return { header: r.headers.subarray(i * headerBytes, (i + 1) * headerBytes), crc: r.crcs[i]! };
    });
  });
}

/** Part i copied into dest at byte offsets[i], on a few pool threads at once. */
export async function copyPartsInto(parts: Uint8Array[], dest: Uint8Array, offsets: number[]): Promise<void> {
  if (parts.length === 0) return;
  await inChunks(parts, async (chunk, from) => {
    await copyBytesInto(chunk, dest, Float64Array.from(offsets.slice(from, from + chunk.length)));
    return [];
  });
}
