// Decoding in worker threads. On the main thread each decoded image cost a share of it (sharp's
// per-call JavaScript, the Pillow port for enlargements, the cache write: bench/loader.ts), which
// capped a first epoch however many cores were free (docs/performance.md). A few workers run
// preprocessImageUint8 and the cache write instead, each with many images in flight (the pixel work
// itself runs on libuv's and libvips' threads either way), and send back the crops' memory.
import os from 'node:os';
import { Worker } from 'node:worker_threads';

import { decodeHere, type CacheTarget, type DecodeReply, type DecodeRequest, type WorkerDecode } from './decode-job.js';
import { ImageDecodeError } from './image-problems.js';
import { preprocessImageUint8, type PreprocessOptions } from './preprocess.js';

/** Workers a loader uses by default: none below 4 cores, where a thread of its own only competes. */
export function defaultDecodeThreads(cores = os.availableParallelism()): number {
  return cores < 4 ? 0 : Math.min(4, Math.floor(cores / 4));
}

type Pending = { request: DecodeRequest; resolve: (r: WorkerDecode) => void; reject: (e: unknown) => void };

class DecodeWorker {
  readonly pending = new Map<number, Pending>();
  private readonly worker: Worker;

  constructor(script: URL, onFailure: (err: unknown) => void) {
    this.worker = new Worker(script);
    this.worker.unref(); // an idle pool never keeps the process alive
    this.worker.on('message', (reply: DecodeReply) => this.settle(reply));
    this.worker.on('error', onFailure);
    this.worker.on('exit', (code) => {
      // Exiting with nothing to do (the process is ending) is no failure.
      if (this.pending.size > 0) onFailure(new Error(`decode worker exited with code ${code}`));
    });
  }

  send(p: Pending): void {
    this.pending.set(p.request.id, p);
    if (this.pending.size === 1) this.worker.ref(); // keep the process alive while work is out
    this.worker.postMessage(p.request);
  }

  terminate(): void {
    this.worker.removeAllListeners();
    void this.worker.terminate();
  }

  private settle(reply: DecodeReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    const { file, options } = p.request;
    if (!reply.ok) return p.reject(new ImageDecodeError(reply.kind, file, reply.detail));
    const resolution = options.resolution ?? 224;
    p.resolve({
      crop: { data: reply.data, shape: [resolution, resolution, 3], sourceWidth: reply.sourceWidth, sourceHeight: reply.sourceHeight },
      cacheWriteFailed: reply.cacheWriteFailed,
    });
  }
}

const pools = new Map<number, DecodePool>();

/** The process's pool of `threads` decode workers (made on first use). */
export function sharedDecodePool(threads: number): DecodePool {
  let pool = pools.get(threads);
  if (!pool) pools.set(threads, (pool = new DecodePool(threads, (file, options, cache) => decodeHere(preprocessImageUint8, file, options, cache))));
  return pool;
}

/**
 * A pool of decode workers, started as work comes. Should a worker die (not an image's decode error,
 * which comes back as that image's ImageDecodeError), its images are handed to `fallback` on the main
 * thread and the pool is not used again: a broken pool must not turn good images into skipped ones.
 */
export class DecodePool {
  private readonly workers: DecodeWorker[] = [];
  private nextId = 0;
  private broken = false;

  constructor(
    private readonly threads: number,
    private readonly fallback: (file: string, options: PreprocessOptions, cache?: CacheTarget) => Promise<WorkerDecode>,
    private readonly script = new URL('./decode-worker-thread.js', import.meta.url),
  ) {}

  decode(file: string, options: PreprocessOptions, cache?: CacheTarget): Promise<WorkerDecode> {
    if (this.broken) return this.fallback(file, options, cache);
    if (this.workers.length < this.threads) this.workers.push(new DecodeWorker(this.script, (err) => this.fail(err)));
    // The least busy worker takes it.
    const worker = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    return new Promise<WorkerDecode>((resolve, reject) => worker.send({ request: { id: this.nextId++, file, options, cache }, resolve, reject }));
  }

  private fail(err: unknown): void {
    if (this.broken) return;
    this.broken = true;
    process.emitWarning(`clip-native: a decode worker failed (${err instanceof Error ? err.message : String(err)}); decoding on the main thread from now on`);
    for (const w of this.workers.splice(0)) {
      w.terminate();
      for (const p of w.pending.values()) this.fallback(p.request.file, p.request.options, p.request.cache).then(p.resolve, p.reject);
    }
  }
}
