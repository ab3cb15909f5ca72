// L2-normalised embeddings of images and texts, for search, clustering or another model's input.
import type { Dataset, Sample } from '../data/dataset.js';
import { createLoader, type SkippedImage } from '../data/loader.js';
import { modelPreprocessing } from '../data/preprocess.js';
import type { Precision } from '../model/model.js';
import type { ClipTokenizer } from '../text/tokenizer.js';
import { listImages } from './image-list.js';
import { assertFinite } from './finite.js';
import { asMatrix, concatRows, normalizeRows, type Matrix } from './matrix.js';
import { tokenizerFor, withModel, type ModelSource } from './model-source.js';
import { encodeTexts } from './text-features.js';

export interface EmbedImagesOptions {
  model: ModelSource;
  device?: string;
  precision?: Precision;
  /** Images per encodeImage call. Default 32. */
  batchSize?: number;
  /** Fail on an unreadable image instead of leaving it out (and listing it in `skipped`). */
  strict?: boolean;
  cache?: boolean;
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: (progress: { done: number; total: number }) => void;
}

export interface ImageEmbeddings {
  /** [rows, embed_dim]; row i belongs to files[i]. */
  features: Matrix;
  files: string[];
  skipped: SkippedImage[];
}

/** Embeddings of image files: a folder, a list file, or explicit paths. */
export async function embedImages(images: string | readonly string[], options: EmbedImagesOptions): Promise<ImageEmbeddings> {
  const samples: Sample[] =
    typeof images === 'string' ? await listImages(images) : images.map((image) => ({ image, source: { file: image, line: 0 } }));
  if (samples.length === 0) throw new Error('embedImages: no images given');
  // The loader works on datasets; an unlabelled one of these images gives its ordering, decoding and skipping.
  const dataset: Dataset = { root: '', format: 'folder', kind: 'captions', classes: [], samples, problems: [] };
  return withModel(options.model, options.device, async (model) => {
    const loader = createLoader(dataset, {
      batchSize: options.batchSize ?? 32,
      shuffle: false,
      ...modelPreprocessing(model.config),
      strict: options.strict,
      cache: options.cache,
      cacheDir: options.cacheDir,
    });
    const blocks: Matrix[] = [];
    const files: string[] = [];
    for await (const batch of loader) {
      options.signal?.throwIfAborted();
      const features = asMatrix(await model.encodeImage(batch.images, { precision: options.precision }), 'encodeImage output');
      const context = `(images ${files.length + 1}–${files.length + batch.samples.length})`;
      assertFinite(features, { output: 'image features', rows: 'images', names: batch.samples.map((s) => s.image), context });
      blocks.push(normalizeRows(features));
      files.push(...batch.samples.map((s) => s.image));
      options.onProgress?.({ done: files.length, total: samples.length });
    }
    if (files.length === 0) throw new Error(`embedImages: none of the ${samples.length} images could be read`);
    return { features: concatRows(blocks, model.config.embed_dim), files, skipped: loader.stats().skippedImages };
  });
}

export interface EmbedTextsOptions {
  model: ModelSource;
  device?: string;
  precision?: Precision;
  tokenizer?: ClipTokenizer;
  /** Texts per encodeText call. Default 256. */
  batchSize?: number;
  /** Cut texts longer than the context instead of refusing them. Default false. */
  truncate?: boolean;
  signal?: AbortSignal;
}

/** Embeddings [texts.length, embed_dim], row i for texts[i]. */
export async function embedTexts(texts: readonly string[], options: EmbedTextsOptions): Promise<Matrix> {
  if (texts.length === 0) throw new Error('embedTexts: no texts given');
  return withModel(options.model, options.device, async (model) =>
    encodeTexts(model, await tokenizerFor(options.tokenizer), texts, {
      batchSize: options.batchSize,
      precision: options.precision,
      truncate: options.truncate,
      signal: options.signal,
    }),
  );
}
