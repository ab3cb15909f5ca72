// The options of a model's evaluation on a dataset, zero-shot (src/eval/zero-shot.ts) or retrieval
// (src/eval/retrieval.ts): in a module of their own so that retrieval.ts, which zero-shot.ts calls
// for caption datasets, does not import zero-shot.ts back.
import type { Precision } from '../model/model.js';
import type { ClipTokenizer } from '../text/tokenizer.js';
import type { Templates } from './classifier.js';

export interface EvaluateProgress {
  /** Images scored so far. */
  done: number;
  total: number;
}

export interface EvaluateModelOptions {
  /** Template set name, one template, or a list. Default 'default'. */
  templates?: Templates;
  /** Images per encodeImage call. Default 32. */
  batchSize?: number;
  precision?: Precision;
  tokenizer?: ClipTokenizer;
  signal?: AbortSignal;
  onProgress?: (progress: EvaluateProgress) => void;
  /** Loader cache of preprocessed crops (see LoaderOptions). Default: the loader's default. */
  cache?: boolean;
  cacheDir?: string;
  /** Fail on an unreadable image instead of skipping it (skipped images are counted). */
  strict?: boolean;
}

export const DEFAULT_EVAL_BATCH = 32;
