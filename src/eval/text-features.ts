// Text embeddings in batches: the tokenizer and the native text encoder, one call per batch so a
// long prompt list (1000 classes × 80 templates) never becomes one giant tensor.
import type { ClipModel, Precision } from '../model/model.js';
import type { ClipTokenizer } from '../text/tokenizer.js';
import { assertFinite } from './finite.js';
import { asMatrix, concatRows, normalizeRows, type Matrix } from './matrix.js';

export interface TextFeatureOptions {
  batchSize?: number;
  precision?: Precision;
  /** Cut texts longer than the context instead of refusing them. Default false. */
  truncate?: boolean;
  signal?: AbortSignal;
}

export const DEFAULT_TEXT_BATCH = 256;

/** L2-normalised text features [texts.length, embed_dim]; NaN or ±Inf features throw NonFiniteOutputError. */
export async function encodeTexts(model: ClipModel, tokenizer: ClipTokenizer, texts: readonly string[], options: TextFeatureOptions = {}): Promise<Matrix> {
  const batchSize = options.batchSize ?? DEFAULT_TEXT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`text batchSize must be a positive integer, got ${batchSize}`);
  const contextLength = model.config.context_length;
  const embedDim = model.config.embed_dim;
  const blocks: Matrix[] = [];
  for (let start = 0; start < texts.length; start += batchSize) {
    options.signal?.throwIfAborted();
    const batch = texts.slice(start, start + batchSize);
    const tokens = tokenizer.tokenize(batch, { contextLength, truncate: options.truncate });
    const features = asMatrix(await model.encodeText(tokens, { precision: options.precision }), 'encodeText output');
    assertFinite(features, { output: 'text features', rows: 'texts', names: batch, context: `(texts ${start + 1}–${start + batch.length} of ${texts.length})` });
    blocks.push(normalizeRows(features));
  }
  return concatRows(blocks, embedDim);
}
