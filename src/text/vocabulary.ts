// Where the tokenizer's vocabulary (openai/CLIP's bpe_simple_vocab_16e6.txt.gz) comes from: an explicit
// path, $CLIP_NATIVE_VOCAB, the copy shipped in the package (assets/), the cache, else a verified download
// into the cache. The shipped copy means tokenizing needs no network; the others remain for an
// installation whose assets/ was stripped.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { cacheDir, isOffline } from '../util/cache.js';
import { downloadVerified, sha256File } from '../util/download.js';
import { packageRoot } from '../util/package-root.js';
import { sidecarPath, verifyCachedFile } from '../util/verified-file.js';

export const VOCAB_FILE_NAME = 'bpe_simple_vocab_16e6.txt.gz';
export const VOCAB_URL = 'https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz';
/** SHA-256 of openai/CLIP's `clip/bpe_simple_vocab_16e6.txt.gz`; a download must match it. */
export const VOCAB_SHA256 = '924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a';
export const VOCAB_ENV = 'CLIP_NATIVE_VOCAB';
/** The copy shipped inside the package (MIT, assets/LICENSE-openai-clip.txt). */
export const BUNDLED_VOCAB = path.join(packageRoot, 'assets', VOCAB_FILE_NAME);

export interface LoadTokenizerOptions {
  /** Path of bpe_simple_vocab_16e6.txt.gz; overrides everything else. */
  vocab?: string;
  /** Model cache directory (default: see `cacheDir()`); the vocabulary is cached there. */
  cacheDir?: string;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The shipped copy when it is there, after checking its SHA-256 (1.3 MB: hashed on every use, no sidecar). */
async function bundledVocabulary(file: string | null): Promise<string | undefined> {
  if (file === null || !(await isFile(file))) return undefined;
  const actual = await sha256File(file);
  if (actual !== VOCAB_SHA256) {
    throw new Error(
      `${file} does not match its known SHA-256 (expected ${VOCAB_SHA256}, got ${actual}): the package's copy was ` +
        `changed, so it was not used. Reinstall clip-native, or set ${VOCAB_ENV}=/path/to/${VOCAB_FILE_NAME}.`,
    );
  }
  return file;
}

/**
 * Where the vocabulary is: `options.vocab`, `$CLIP_NATIVE_VOCAB`, the package's own copy, the cache
 * directory (each SHA-256 checked when used), else a download (SHA-256 checked, as pretrained weights
 * are) into the cache directory. Throws with the places to put the file. `download` is the verified downloader and `bundled` the shipped copy
 * (`null`: none); tests point them elsewhere.
 */
export async function resolveVocabularyPath(
  options: LoadTokenizerOptions = {},
  download: typeof downloadVerified = downloadVerified,
  bundled: string | null = BUNDLED_VOCAB,
): Promise<string> {
  const explicit = options.vocab ?? process.env[VOCAB_ENV];
  if (explicit) {
    const file = path.resolve(explicit);
    if (!(await isFile(file))) {
      const origin = options.vocab ? 'options.vocab' : `$${VOCAB_ENV}`;
      throw new Error(`CLIP vocabulary not found: ${origin} points to ${file}, which is not a file`);
    }
    return file;
  }
  const shipped = await bundledVocabulary(bundled);
  if (shipped) return shipped;
  const cached = path.join(cacheDir(options.cacheDir), VOCAB_FILE_NAME);
  if (await isFile(cached)) {
    // A cached download is checked when used, as pretrained weights are: a replaced file is refused.
    await verifyCachedFile(cached, VOCAB_SHA256, {
      fix: `Delete it (rm '${cached}') to download it anew, or set ${VOCAB_ENV}=/path/to/${VOCAB_FILE_NAME}.`,
    });
    return cached;
  }

  let why: string;
  if (isOffline()) {
    why = 'offline mode is on (HF_HUB_OFFLINE / CLIP_NATIVE_OFFLINE), so it was not downloaded';
  } else {
    try {
      await fs.rm(sidecarPath(cached), { force: true });
      await download(VOCAB_URL, cached, VOCAB_SHA256);
      return cached;
    } catch (err) {
      why = `downloading ${VOCAB_URL} failed: ${(err as Error).message}`;
    }
  }
  throw new Error(
    `CLIP vocabulary ${VOCAB_FILE_NAME} not found (${why}). Put openai/CLIP's clip/${VOCAB_FILE_NAME} ` +
      `(sha256 ${VOCAB_SHA256}) at ${cached}, or set ${VOCAB_ENV}=/path/to/${VOCAB_FILE_NAME}, ` +
      'or pass { vocab: path } to loadTokenizer.',
  );
}
