// Cached downloads are checked against their known SHA-256 when they are used, not only when they are
// downloaded: a file replaced in the cache afterwards is refused. Hashing a 1.7 GB file on every load
// would cost seconds, so a sidecar `<file>.verified.json` records what the file looked like when its
// hash last matched (size, mtime, ctime, inode); a later use re-hashes only when any of them differ,
// or when the sidecar is missing, unreadable or for another hash. Copying or restoring a file gives
// it a new ctime and inode, which costs one more hash, never a false "verified".
import { createHash } from 'node:crypto';
import { promises as fs, type BigIntStats } from 'node:fs';

import { writeFileAtomic } from './atomic.js';

export const SIDECAR_SUFFIX = '.verified.json';

/** Where the record of `file`'s last successful check lives unless another place is given. */
export function sidecarPath(file: string): string {
  return file + SIDECAR_SUFFIX;
}

/** What a sidecar holds: the hash and the stat(2) fields that change when the file's bytes can have. */
interface VerifiedRecord {
  version: 1;
  file: string;
  sha256: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
}

export interface HashProgress {
  file: string;
  loaded: number;
  total: number;
}

export interface VerifyOptions {
  /** Where the record is kept (default `<file>.verified.json`); for files in a folder that is not ours. */
  sidecar?: string;
  /** Called while a file is hashed (never when the sidecar vouches for it). */
  onHashProgress?: (progress: HashProgress) => void;
  /** How to get a good copy, appended to the mismatch message. */
  fix?: string;
}

/** A cached file whose bytes are not the ones its known SHA-256 names. */
export class ChecksumMismatchError extends Error {
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
    fix?: string,
  ) {
    super(
      `${file} does not match its known SHA-256 (expected ${expected}, got ${actual}): it was changed or replaced after it was ` +
        `downloaded, so it was not used. ${fix ?? `Delete it (rm '${file}') and run the command again to download it anew.`}`,
    );
    this.name = 'ChecksumMismatchError';
  }
}

function recordOf(file: string, sha256: string, stat: BigIntStats): VerifiedRecord {
  return { version: 1, file, sha256, size: String(stat.size), mtimeNs: String(stat.mtimeNs), ctimeNs: String(stat.ctimeNs), ino: String(stat.ino) };
}

const RECORD_KEYS: ReadonlyArray<keyof VerifiedRecord> = ['version', 'file', 'sha256', 'size', 'mtimeNs', 'ctimeNs', 'ino'];

/** True when the sidecar says `file`, as it is now, was verified against `sha256`. */
function vouchesFor(sidecar: unknown, expected: VerifiedRecord): boolean {
  if (sidecar === null || typeof sidecar !== 'object' || Array.isArray(sidecar)) return false;
  return RECORD_KEYS.every((key) => Object.hasOwn(sidecar, key) && (sidecar as Record<string, unknown>)[key] === expected[key]);
}

async function readSidecar(sidecar: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(sidecar, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Streams the open file through SHA-256 (never the whole file in memory), reporting progress. */
async function hashHandle(handle: fs.FileHandle, file: string, total: number, onProgress?: (progress: HashProgress) => void): Promise<string> {
  const hash = createHash('sha256');
  let loaded = 0;
  let reported = 0;
  onProgress?.({ file, loaded, total });
  for await (const chunk of handle.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    loaded += (chunk as Buffer).length;
    // Every 64 MiB and at the end: a 1.7 GB file reports some 27 times.
    if (loaded - reported >= 64 << 20 || loaded === total) {
      reported = loaded;
      onProgress?.({ file, loaded, total });
    }
  }
  return hash.digest('hex');
}

/** Writes the sidecar; a cache we cannot write to only means the next use hashes again. */
async function writeRecord(sidecar: string, record: VerifiedRecord): Promise<void> {
  await writeFileAtomic(sidecar, JSON.stringify(record) + '\n', { durable: false }).catch(() => {});
}

/**
 * Records that `file`, as it is now, has the SHA-256 `sha256` (what a verified download knows). The
 * caller must have checked the bytes; the record only saves the next use from hashing them again.
 */
export async function recordVerified(file: string, sha256: string, options: Pick<VerifyOptions, 'sidecar'> = {}): Promise<void> {
  await writeRecord(options.sidecar ?? sidecarPath(file), recordOf(file, sha256, await fs.stat(file, { bigint: true })));
}

/**
 * Refuses `file` unless its SHA-256 is `sha256`. Hashes only when the sidecar does not vouch for the
 * file as it is now; after a successful hash writes the sidecar, after a failed one removes it.
 * Returns how it knew: `'sidecar'` or `'hashed'`.
 */
export async function verifyCachedFile(file: string, sha256: string, options: VerifyOptions = {}): Promise<'sidecar' | 'hashed'> {
  const sidecar = options.sidecar ?? sidecarPath(file);
  // Checked before opening: opening a FIFO for reading would wait for a writer.
  if (!(await fs.stat(file)).isFile()) throw new Error(`${file} is not a regular file`);
  const handle = await fs.open(file, 'r');
  try {
    const before = await handle.stat({ bigint: true });
    if (!before.isFile()) throw new Error(`${file} is not a regular file`);
    if (vouchesFor(await readSidecar(sidecar), recordOf(file, sha256, before))) return 'sidecar';
    const actual = await hashHandle(handle, file, Number(before.size), options.onHashProgress);
    if (actual !== sha256) {
      await fs.rm(sidecar, { force: true }).catch(() => {});
      throw new ChecksumMismatchError(file, sha256, actual, options.fix);
    }
    // Written while the file held the hashed bytes: its stat after hashing must still be the one before.
    const after = await fs.stat(file, { bigint: true });
    const record = recordOf(file, sha256, before);
    if (vouchesFor(recordOf(file, sha256, after), record)) await writeRecord(sidecar, record);
    return 'hashed';
  } finally {
    await handle.close();
  }
}
