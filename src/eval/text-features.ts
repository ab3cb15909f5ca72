// Text embeddings in batches: the tokenizer and the native text encoder, one call per batch so a
// long prompt list (1000 classes × 80 templates) never becomes one giant tensor.
import type { ClipModel, Precision } from '../model/model.js';
import type { ClipTokenizer } from '../text/tokenizer.js';
import { asMatrix, concatRows, normalizeRows, type Matrix } from './matrix.js';

export interface TextFeatureOptions {
  batchSize?: number;
  precision?: Precision;
  /** Cut texts longer than the context instead of refusing them. Default false. */
  truncate?: boolean;
  signal?: AbortSignal;
}

export const DEFAULT_TEXT_BATCH = 256;

/** L2-normalised text features [texts.length, embed_dim]. */
export async function encodeTexts(model: ClipModel, tokenizer: ClipTokenizer, texts: readonly string[], options: TextFeatureOptions = {}): Promise<Matrix> {
  const batchSize = options.batchSize ?? DEFAULT_TEXT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`text batchSize must be a positive integer, got ${batchSize}`);
  const contextLength = model.config.context_length;
  const embedDim = model.config.embed_dim;
  const blocks: Matrix[] = [];
  for (let start = 0; start < texts.length; start += batchSize) {
    options.signal?.throwIfAborted();
    const tokens = tokenizer.tokenize(texts.slice(start, start + batchSize), { contextLength, truncate: options.truncate });
    const features = await model.encodeText(tokens, { precision: options.precision });
    blocks.push(normalizeRows(asMatrix(features, 'encodeText output')));
  }
  return concatRows(blocks, embedDim);
}
