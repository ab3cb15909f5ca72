// Zero-shot evaluation of a labelled dataset: class embeddings from prompt templates, image
// embeddings batch by batch through the loader, metrics from the cosine scores.
import { loadDataset, type LoadDatasetOptions } from '../data/load-dataset.js';
import type { Dataset } from '../data/dataset.js';
import { createLoader } from '../data/loader.js';
import { modelPreprocessing } from '../data/preprocess.js';
import type { ClipModel } from '../model/model.js';
import { resolveTemplates } from '../text/prompts.js';
import { zeroShotClassifier } from './classifier.js';
import { DEFAULT_EVAL_BATCH, type EvaluateModelOptions, type EvaluateProgress } from './evaluate-options.js';
import { assertFinite } from './finite.js';
import { asMatrix, matmulTransposed, normalizeRows } from './matrix.js';
import { MetricsAccumulator, type ClassificationMetrics } from './metrics.js';
import { inEvalMode, tokenizerFor, withModel, type ModelSource } from './model-source.js';
import { evaluateRetrievalModel, type RetrievalEvaluation } from './retrieval.js';

export { DEFAULT_EVAL_BATCH, type EvaluateModelOptions, type EvaluateProgress };

export interface EvaluateOptions extends EvaluateModelOptions {
  model: ModelSource;
  /** A dataset location (see loadDataset) or an already loaded Dataset. */
  data: string | Dataset;
  /** Split to load when `data` is a location. Default 'test'. */
  split?: 'train' | 'test';
  /** Extra options for loadDataset (e.g. `ext` for the blog layout). */
  dataOptions?: LoadDatasetOptions;
  /** Device for a model given by name or path. */
  device?: string;
}

export interface EvaluateResult extends ClassificationMetrics {
  templates: string[];
  /** Images the loader could not read and left out of the metrics. */
  skipped: number;
}

/**
 * A model on a dataset, loading either when given by location: zero-shot accuracy for class labels,
 * retrieval metrics (src/eval/retrieval.ts) for captions; isRetrieval() tells them apart.
 */
export async function evaluate(options: EvaluateOptions): Promise<EvaluateResult | RetrievalEvaluation> {
  const dataset =
    typeof options.data === 'string' ? await loadDataset(options.data, { ...options.dataOptions, split: options.split ?? 'test' }) : options.data;
  return withModel<EvaluateResult | RetrievalEvaluation>(options.model, options.device, (model) =>
    dataset.kind === 'captions' ? evaluateRetrievalModel(model, dataset, options) : evaluateModel(model, dataset, options),
  );
}

/**
 * Zero-shot accuracy of an already loaded model on an already loaded dataset: what a training loop
 * calls between epochs. The model is switched to eval mode for the pass and restored afterwards.
 */
export async function evaluateModel(model: ClipModel, dataset: Dataset, options: EvaluateModelOptions = {}): Promise<EvaluateResult> {
  if (dataset.kind !== 'labels' || dataset.classes.length === 0) {
    throw new Error(`${dataset.root}: zero-shot evaluation needs a dataset with class labels, not captions`);
  }
  const templates = [...resolveTemplates(options.templates ?? 'default')];
  const batchSize = options.batchSize ?? DEFAULT_EVAL_BATCH;
  return inEvalMode(model, async () => {
    const tokenizer = await tokenizerFor(options.tokenizer);
    const classifier = await zeroShotClassifier(model, dataset.classes, templates, tokenizer, { precision: options.precision, signal: options.signal });
    const loader = createLoader(dataset, {
      batchSize,
      shuffle: false,
      // The model's resolution, resize mode, mean and std (OpenAI's where its configuration has none).
      ...modelPreprocessing(model.config),
      cache: options.cache,
      cacheDir: options.cacheDir,
      strict: options.strict,
    });
    const metrics = new MetricsAccumulator(dataset.classes);
    const total = dataset.samples.length;
    let done = 0;
    for await (const batch of loader) {
      options.signal?.throwIfAborted();
      const features = asMatrix(await model.encodeImage(batch.images, { precision: options.precision }), 'encodeImage output');
      // An accuracy over NaN scores would still be a number: refuse them (NonFiniteOutputError).
      const names = batch.samples.map((s) => s.image);
      const context = `(images ${done + 1}–${done + batch.samples.length} of ${total})`;
      assertFinite(features, { output: 'image features', rows: 'images', names, context });
      const scores = matmulTransposed(normalizeRows(features), classifier);
      assertFinite(scores, { output: 'zero-shot scores', rows: 'images', names, context });
      metrics.add(scores, batch.labelIndices!);
      done += batch.samples.length;
      options.onProgress?.({ done, total });
    }
    return { ...metrics.result(), templates, skipped: loader.stats().skipped };
  });
}
