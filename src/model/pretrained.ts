// OpenAI's released weights: where they come from, their SHA-256, and where they are cached.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';

import { cacheDir, isOffline, openaiCacheDir } from '../util/cache.js';
import { downloadVerified, type ProgressCallback } from '../util/download.js';
import { ChecksumMismatchError, SIDECAR_SUFFIX, sidecarPath, verifyCachedFile, type HashProgress } from '../util/verified-file.js';
import { canonicalModelName } from './config.js';

interface PretrainedFile {
  url: string;
  sha256: string;
  file: string;
}

const BASE = 'https://openaipublic.azureedge.net/clip/models';
const files: Record<string, [string, string]> = {
  RN50: ['afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762', 'RN50.pt'],
  RN101: ['8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599', 'RN101.pt'],
  RN50x4: ['7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd', 'RN50x4.pt'],
  RN50x16: ['52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa', 'RN50x16.pt'],
  RN50x64: ['be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c', 'RN50x64.pt'],
  'ViT-B/32': ['40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af', 'ViT-B-32.pt'],
  'ViT-B/16': ['5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f', 'ViT-B-16.pt'],
  'ViT-L/14': ['b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836', 'ViT-L-14.pt'],
  'ViT-L/14@336px': ['3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02', 'ViT-L-14-336px.pt'],
};

export function pretrainedFile(name: string): PretrainedFile | undefined {
  const canonical = canonicalModelName(name);
  if (!canonical) return undefined;
  const [sha256, file] = files[canonical]!;
  return { url: `${BASE}/${sha256}/${file}`, sha256, file };
}

export interface ResolveOptions {
  cacheDir?: string;
  progressCallback?: ProgressCallback;
  /** Replaces the network download (tests). */
  download?: typeof downloadVerified;
}

/** Files this large get a line on stderr while they are hashed (when nobody asked for progress). */
const ANNOUNCE_HASH_BYTES = 64 << 20;

/** Hash progress: to the caller's callback as `verify` events, else one line on a terminal's stderr. */
function hashProgress(callback: ProgressCallback | undefined): (progress: HashProgress) => void {
  if (callback) return ({ file, loaded, total }) => callback({ status: 'verify', file: path.basename(file), loaded, total });
  return ({ file, loaded, total }) => {
    if (loaded !== 0 || total < ANNOUNCE_HASH_BYTES || !process.stderr.isTTY) return;
    process.stderr.write(`checking the SHA-256 of ${file} (${(total / 1e6).toFixed(0)} MB); later loads skip this while the file is unchanged\n`);
  };
}

/**
 * The local path of a released model: our cache, then OpenAI's own `~/.cache/clip` when its SHA-256
 * matches, then a verified download unless offline. A cached file is checked against its SHA-256 when
 * it is used (hashed again only when it changed since its last check, see verifyCachedFile): one that
 * was replaced or corrupted is refused, naming the file and how to download it anew.
 */
export async function resolvePretrained(name: string, options: ResolveOptions = {}): Promise<string> {
  const entry = pretrainedFile(name);
  if (!entry) throw new Error(`'${name}' is neither a file nor a released CLIP model (OpenAI's names such as ViT-B/32, open_clip's ARCH:TAG such as ViT-B-32:laion2b_s34b_b79k, or hf-hub:org/name)`);
  const ours = path.join(cacheDir(options.cacheDir), 'openai');
  const target = path.join(ours, entry.file);
  const onHashProgress = hashProgress(options.progressCallback);
  if (existsSync(target)) {
    await verifyCachedFile(target, entry.sha256, {
      onHashProgress,
      fix: `Delete it (rm '${target}') and load ${name} again to download it anew from ${entry.url}, or pass a file path instead of a name.`,
    });
    return target;
  }
  const theirs = path.join(openaiCacheDir(), entry.file);
  if (existsSync(theirs)) {
    // OpenAI's cache is not ours to write in: its record lives in ours. A file there that does not
    // match is passed over, as clip.load would download it again.
    try {
      await verifyCachedFile(theirs, entry.sha256, { onHashProgress, sidecar: path.join(ours, `${entry.file}.openai-cache${SIDECAR_SUFFIX}`) });
      return theirs;
    } catch (err) {
      if (!(err instanceof ChecksumMismatchError)) throw err;
    }
  }
  const fix = `Put ${entry.file} (sha256 ${entry.sha256}, from ${entry.url}) at ${target}, or pass a file path instead of a name.`;
  if (isOffline()) throw new Error(`${name} is not in the model cache and offline mode is on (HF_HUB_OFFLINE / CLIP_NATIVE_OFFLINE). ${fix}`);
  try {
    // A record left from an earlier file must not vouch for the new one.
    await fs.rm(sidecarPath(target), { force: true });
    await (options.download ?? downloadVerified)(entry.url, target, entry.sha256, options.progressCallback);
    // Whatever fetched it, nothing unverified stays in the cache (the verified downloader's record
    // saves hashing it twice).
    try {
      await verifyCachedFile(target, entry.sha256, { onHashProgress });
    } catch (err) {
      if (!(err instanceof ChecksumMismatchError)) throw err;
      await fs.rm(target, { force: true });
      throw new Error(`the downloaded file's SHA-256 is ${err.actual}, expected ${entry.sha256}; it was deleted`);
    }
  } catch (err) {
    throw new Error(`${name} is not in the model cache and downloading it failed (${(err as Error).message}). ${fix}`);
  }
  return target;
}
