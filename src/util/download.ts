// Verified downloads: streamed to a temporary file while hashing, renamed into place only when the
// SHA-256 matches, with progress reported as transformers.js does ({status, file, loaded, total}).
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';

import { writeAtomically } from './atomic.js';
import { recordVerified } from './verified-file.js';

export interface DownloadProgress {
  /** 'verify': a cached file is being hashed against its known SHA-256 (it changed since its last check). */
  status: 'initiate' | 'progress' | 'done' | 'verify';
  file: string;
  loaded: number;
  total: number | null;
}

export type ProgressCallback = (progress: DownloadProgress) => void;

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Downloads `url` to `target`, refusing (and deleting) anything whose SHA-256 is not `sha256`. A kept
 * file gets its sidecar (see verifyCachedFile), so its first use need not hash it again.
 */
export async function downloadVerified(url: string, target: string, sha256: string, onProgress?: ProgressCallback): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const file = path.basename(target);
  const response = await fetch(url, { redirect: 'follow' });
  if (!response.ok || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || null;
  onProgress?.({ status: 'initiate', file, loaded: 0, total });
  await writeAtomically(target, async (handle) => {
    const hash = createHash('sha256');
    let loaded = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      await handle.write(chunk);
      loaded += chunk.length;
      onProgress?.({ status: 'progress', file, loaded, total });
    }
    const actual = hash.digest('hex');
    if (actual !== sha256) throw new Error(`downloaded ${url} but its SHA-256 is ${actual}, expected ${sha256}; nothing was kept`);
  });
  await recordVerified(target, sha256);
  const { size } = await fs.stat(target);
  onProgress?.({ status: 'done', file, loaded: size, total });
}
