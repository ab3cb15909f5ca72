// Resumable, verified downloads: the bytes go to `<part>` (appended with an HTTP Range request when an
// earlier attempt left some there), are checked against the digest the server stated, and only then
// renamed to the target. A digest mismatch deletes the partial file; a broken connection keeps it, for
// the next attempt (in this call, up to `retries` more, or the next run). Progress is reported as
// download.ts reports it ({status, file, loaded, total}), `loaded` counting the resumed bytes too.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';

import type { ProgressCallback } from './download.js';

/** How a file's content is named: its SHA-256 (Git LFS oid), or git's blob SHA-1 (`sha1("blob <size>\0" + content)`). */
export type DigestKind = 'sha256' | 'git-sha1';

export interface ExpectedDigest {
  kind: DigestKind;
  hex: string;
}

/** sha256 for a 64-hex name, git-sha1 for a 40-hex name, undefined otherwise. */
export function digestOfName(name: string): ExpectedDigest | undefined {
  if (/^[0-9a-f]{64}$/.test(name)) return { kind: 'sha256', hex: name };
  if (/^[0-9a-f]{40}$/.test(name)) return { kind: 'git-sha1', hex: name };
  return undefined;
}

async function hashPrefix(hash: Hash, file: string, end: number): Promise<void> {
  if (end <= 0) return;
  for await (const chunk of createReadStream(file, { start: 0, end: end - 1 })) hash.update(chunk as Buffer);
}

/** The digest of a file's content, of the given kind. */
export async function fileDigest(file: string, kind: DigestKind): Promise<string> {
  const hash = createHash(kind === 'sha256' ? 'sha256' : 'sha1');
  const { size } = await fs.stat(file);
  if (kind === 'git-sha1') hash.update(`blob ${size}\0`);
  await hashPrefix(hash, file, size);
  return hash.digest('hex');
}

export interface FetchOptions {
  /** Sent only to `authOrigin` (a redirect to another origin, a CDN, goes without them). */
  headers?: Record<string, string>;
  authOrigin?: string;
  /** Abort when no bytes arrive for this long (default 60 s). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * fetch with redirects followed by hand (at most 10), so that the Authorization header is dropped when
 * a redirect leaves the origin it was meant for.
 */
export async function fetchFollowing(url: string, init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal }, options: FetchOptions = {}): Promise<Response> {
  let current = new URL(url);
  for (let hop = 0; hop <= 10; hop++) {
    const sameOrigin = !options.authOrigin || current.origin === options.authOrigin;
    const headers = { ...(init.headers ?? {}), ...(sameOrigin ? (options.headers ?? {}) : {}) };
    const response = await fetch(current, { method: init.method ?? 'GET', headers, redirect: 'manual', signal: init.signal });
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      current = new URL(location, current);
      continue;
    }
    return response;
  }
  throw new Error(`${url}: more than 10 redirects`);
}

export interface ResumableDownload {
  url: string;
  /** Where the verified file ends up. */
  target: string;
  /** Where the bytes go until verified (kept between attempts and runs). */
  part: string;
  expected?: ExpectedDigest;
  /** The size the server stated, when it did: more bytes than this are refused. */
  size?: number;
  /** The name progress reports carry (default: the target's base name). */
  label?: string;
  onProgress?: ProgressCallback;
  /** Further attempts after a broken connection in this call (default 3); each resumes. */
  retries?: number;
  fetch?: FetchOptions;
}

/** Bytes that cannot be right: the partial file is deleted, no further attempt. */
class VerificationError extends Error {}
/** An answer another attempt would not change (HTTP 4xx): no further attempt, the partial file kept. */
class FinalError extends Error {}

/** One GET, appended to `part` from its current size on; resolves when the body has ended. */
async function attempt(job: ResumableDownload): Promise<{ hash: Hash | undefined }> {
  const label = job.label ?? path.basename(job.target);
  let offset = await fs.stat(job.part).then((s) => s.size, () => 0);
  if (job.size !== undefined && offset > job.size) {
    await fs.rm(job.part, { force: true });
    offset = 0;
  }
  if (job.size !== undefined && offset === job.size) {
    // An earlier run got every byte but stopped before the check.
    job.onProgress?.({ status: 'initiate', file: label, loaded: offset, total: job.size });
    return { hash: undefined };
  }
  const controller = new AbortController();
  const idleMs = job.fetch?.idleTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
  };
  const outer = job.fetch?.signal;
  const onOuterAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  arm();
  try {
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const response = await fetchFollowing(job.url, { headers, signal: controller.signal }, job.fetch);
    if (response.status === 416 && offset > 0) {
      // The server has nothing past what we hold: start over rather than trust it.
      await response.body?.cancel();
      await fs.rm(job.part, { force: true });
      throw new Error(`GET ${job.url}: HTTP 416 for bytes ${offset}-; the partial file was discarded`);
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      const final = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
      throw new (final ? FinalError : Error)(`GET ${job.url}: HTTP ${response.status}`);
    }
    let append = false;
    if (response.status === 206) {
      const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
      if (Number(start) !== offset) {
        await response.body.cancel();
        await fs.rm(job.part, { force: true });
        throw new Error(`GET ${job.url}: asked for bytes ${offset}- but the server sent ${response.headers.get('content-range') ?? 'no Content-Range'}`);
      }
      append = true;
    }
    if (!append) offset = 0;
    const length = Number(response.headers.get('content-length'));
    const total = job.size ?? (Number.isFinite(length) && response.headers.has('content-length') ? offset + length : null);
    // A SHA-256 is taken as the bytes arrive (what was there before this response is hashed from
    // disk); a git blob SHA-1 (small files) is taken from the file once complete.
    const hash = job.expected?.kind === 'sha256' ? createHash('sha256') : undefined;
    if (hash && append) await hashPrefix(hash, job.part, offset);
    job.onProgress?.({ status: 'initiate', file: label, loaded: offset, total });
    await fs.mkdir(path.dirname(job.part), { recursive: true });
    const handle = await fs.open(job.part, append ? 'a' : 'w');
    let loaded = offset;
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        arm();
        loaded += chunk.length;
        if (job.size !== undefined && loaded > job.size) throw new VerificationError(`GET ${job.url}: more than the ${job.size} bytes the hub states`);
        await handle.write(chunk);
        hash?.update(chunk);
        job.onProgress?.({ status: 'progress', file: label, loaded, total });
      }
    } finally {
      await handle.close();
    }
    if (job.size !== undefined && loaded !== job.size) throw new Error(`GET ${job.url}: the body ended after ${loaded} of ${job.size} bytes`);
    return { hash };
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

/**
 * Downloads `url` to `target` through `part`, resuming what `part` holds. Verified against `expected`
 * when given; on a mismatch `part` is deleted and nothing is kept. Resolves with the target's size.
 */
export async function downloadResumable(job: ResumableDownload): Promise<number> {
  const label = job.label ?? path.basename(job.target);
  const retries = job.retries ?? 3;
  let lastError: unknown;
  for (let i = 0; i <= retries; i++) {
    let result: { hash: Hash | undefined };
    try {
      result = await attempt(job);
    } catch (err) {
      lastError = err;
      if (err instanceof VerificationError) {
        await fs.rm(job.part, { force: true });
        throw err;
      }
      if (err instanceof FinalError || job.fetch?.signal?.aborted) break;
      continue;
    }
    const { size } = await fs.stat(job.part);
    if (job.expected) {
      let actual: string;
      if (result.hash && job.expected.kind === 'sha256') actual = result.hash.digest('hex');
      else actual = await fileDigest(job.part, job.expected.kind);
      if (actual !== job.expected.hex) {
        await fs.rm(job.part, { force: true });
        const what = job.expected.kind === 'sha256' ? 'SHA-256' : 'git blob SHA-1';
        throw new Error(`downloaded ${job.url} but its ${what} is ${actual}, the hub states ${job.expected.hex}; the partial file was deleted`);
      }
    }
    await fs.rename(job.part, job.target);
    job.onProgress?.({ status: 'done', file: label, loaded: size, total: size });
    return size;
  }
  const kept = await fs.stat(job.part).then((s) => s.size, () => 0);
  throw new Error(`${(lastError as Error)?.message ?? String(lastError)}` +
    (kept > 0 ? `; ${kept} bytes are kept in ${job.part} and the next attempt resumes from there` : ''));
}
