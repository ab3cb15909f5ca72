// File stats and whole-file reads for the data loader, sent to the addon in batches
// (native/io/file_batch.h). Requests made in one turn of the event loop, or while `maxInFlight`
// batches are running, leave together, so a busy loader makes a few large requests instead of one
// (and a thread-pool wake-up) per file operation; an idle one still sends a lone request at once.
import os from 'node:os';
import { getSystemErrorMap } from 'node:util';

import { readFiles, statFiles } from '../native.js';

const { ENOENT } = os.constants.errno;

export interface FileInfo {
  isFile: boolean;
  size: number;
  /** As fs.stat's mtimeMs (the same arithmetic on the same seconds and nanoseconds). */
  mtimeMs: number;
}

export interface FileBytes {
  data: Buffer;
  /** CRC-32 (zlib's) of data[crcFrom, length). */
  crc: number;
}

let errorNames: Map<number, [string, string]> | undefined;

/** An Error shaped as Node's fs errors (code, errno, syscall, path), so callers classify it alike. */
function fsError(errno: number, syscall: string, file: string): NodeJS.ErrnoException {
  errorNames ??= getSystemErrorMap(); // built anew by each call
  const [code, description] = errorNames.get(-errno) ?? [`E${errno}`, 'unknown error'];
  return Object.assign(new Error(`${code}: ${description}, ${syscall} '${file}'`), { code, errno: -errno, syscall, path: file });
}

type Pending<Req, Res> = { request: Req; resolve: (r: Res) => void; reject: (e: unknown) => void };

class Batcher<Req, Res> {
  private queue: Array<Pending<Req, Res>> = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (requests: Req[]) => Promise<Array<Res | Error>>,
    private readonly maxInFlight: number,
    private readonly maxBatch: number,
  ) {}

  request(request: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      // Requests made in the same turn of the event loop leave together.
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      // Spread what waits over the free slots, so the pool's threads share it.
      const size = Math.min(this.maxBatch, Math.ceil(this.queue.length / (this.maxInFlight - this.inFlight)));
      const batch = this.queue.splice(0, size);
      this.inFlight++;
      this.run(batch.map((p) => p.request))
        .then(
          (results) => batch.forEach((p, i) => (results[i] instanceof Error ? p.reject(results[i]) : p.resolve(results[i] as Res))),
          (err: unknown) => batch.forEach((p) => p.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}

const MAX_IN_FLIGHT = Math.max(2, Math.min(8, Math.floor(os.availableParallelism() / 2)));
const MAX_BATCH = 32;

const stats = new Batcher<string, FileInfo>(
  async (paths) => {
    const r = await statFiles(paths);
    return paths.map((file, i) =>
      r.errors[i] !== 0 ? fsError(r.errors[i]!, 'stat', file) : { isFile: r.regular[i] === 1, size: r.sizes[i]!, mtimeMs: r.mtimeSec[i]! * 1e3 + r.mtimeNsec[i]! / 1e6 },
    );
  },
  MAX_IN_FLIGHT,
  MAX_BATCH,
);

/** fs.stat(file), batched with other stats. */
export function statFile(file: string): Promise<FileInfo> {
  return stats.request(file);
}

// Reads are grouped by their expected length and CRC range: one native call serves one such pair.
const readers = new Map<string, Batcher<string, FileBytes | undefined>>();

/**
 * The whole file when it is exactly `length` bytes long, with the CRC-32 of its bytes from `crcFrom`;
 * undefined when it has another length or does not exist (a cache's usual miss: no Error is made for
 * it). Rejects as fs would for a file that cannot be opened or read.
 */
export function readFileOfLength(file: string, length: number, crcFrom: number): Promise<FileBytes | undefined> {
  const key = `${length}:${crcFrom}`;
  let reader = readers.get(key);
  if (!reader) {
    reader = new Batcher<string, FileBytes | undefined>(
      async (paths) => {
        const r = await readFiles(paths, length, crcFrom);
        return paths.map((p, i) => {
          const errno = r.errors[i]!;
          if (errno === -1 || errno === ENOENT) return undefined;
          if (errno !== 0) return fsError(errno, 'open', p);
          return { data: r.data[i]!, crc: r.crcs[i]! };
        });
      },
      MAX_IN_FLIGHT,
      MAX_BATCH,
    );
    readers.set(key, reader);
  }
  return reader.request(file);
}
