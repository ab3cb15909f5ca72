// Zero-shot prediction for individual images: labels ranked by softmax probability.
import { modelPreprocessing, preprocessImage } from '../data/preprocess.js';
import type { ClipModel, Precision } from '../model/model.js';
import { resolveTemplates } from '../text/prompts.js';
import type { ClipTokenizer } from '../text/tokenizer.js';
import { zeroShotClassifier, type Templates } from './classifier.js';
import { logitScale } from './logit-scale.js';
import { assertFinite, NonFiniteOutputError } from './finite.js';
import { asMatrix, matmulTransposed, normalizeRows, rankRow, softmaxRow, type Matrix } from './matrix.js';
import { tokenizerFor, withModel, type ModelSource } from './model-source.js';

export interface ClassifyOptions {
  model: ModelSource;
  /** Template set name, one template, or a list. Default 'default'. */
  templates?: Templates;
  /** Labels to keep per image, best first. Default: all. */
  top?: number;
  batchSize?: number;
  device?: string;
  precision?: Precision;
  tokenizer?: ClipTokenizer;
  signal?: AbortSignal;
}

export interface LabelScore {
  label: string;
  /** Softmax over all labels of the logits. */
  probability: number;
  /** exp(logit_scale) · cosine(image, class embedding). */
  logit: number;
}

export interface ImagePrediction {
  /** The path, or `buffer #i` for an in-memory image. */
  image: string;
  ranking: LabelScore[];
}

/** Each image's labels, ranked, with probabilities (softmax over all labels, so they sum to 1). */
export async function classify(images: ReadonlyArray<string | Buffer>, labels: readonly string[], options: ClassifyOptions): Promise<ImagePrediction[]> {
  if (images.length === 0) throw new Error('classify: no images given');
  if (labels.length === 0) throw new Error('classify: no labels given');
  const duplicate = labels.find((label, i) => labels.indexOf(label) !== i);
  if (duplicate !== undefined) throw new Error(`classify: label ${JSON.stringify(duplicate)} is given twice`);
  const top = options.top ?? labels.length;
  if (!Number.isInteger(top) || top < 1) throw new RangeError(`classify: top must be a positive integer, got ${top}`);
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`classify: batchSize must be a positive integer, got ${batchSize}`);
  const templates = [...resolveTemplates(options.templates ?? 'default')];

  return withModel(options.model, options.device, async (model) => {
    const tokenizer = await tokenizerFor(options.tokenizer);
    const classifier = await zeroShotClassifier(model, labels, templates, tokenizer, { precision: options.precision, signal: options.signal });
    const scale = await logitScale(model);
    if (!Number.isFinite(scale)) {
      const kind = Number.isNaN(scale) ? 'NaN' : 'Inf';
      throw new NonFiniteOutputError(images.length, [kind], `the model's logit scale exp(logit_scale) is not finite (${scale}, logit_scale = ${model.logitScale()}): the weights may hold NaN/Inf or a logit_scale that overflows; no probabilities were computed`);
    }
    const predictions: ImagePrediction[] = [];
    for (let start = 0; start < images.length; start += batchSize) {
      options.signal?.throwIfAborted();
      const chunk = images.slice(start, start + batchSize);
      const names = chunk.map((image, i) => (typeof image === 'string' ? image : `buffer #${start + i}`));
      const features = await encodeImageInputs(model, chunk, names, options.precision);
      const logits = scaled(matmulTransposed(features, classifier), scale);
      // Logits are float32: a large logit scale can overflow them even when the features are finite.
      assertFinite(logits, { output: 'logits', rows: 'images', names });
      chunk.forEach((_, i) => {
        const probabilities = softmaxRow(logits, i);
        const ranking = rankRow(logits, i)
          .slice(0, top)
          .map((c) => ({ label: labels[c]!, probability: probabilities[c]!, logit: logits.data[i * labels.length + c]! }));
        predictions.push({ image: names[i]!, ranking });
      });
    }
    return predictions;
  });
}

/** Normalised image features for paths or encoded image buffers (`names`: how errors name them). */
async function encodeImageInputs(model: ClipModel, images: ReadonlyArray<string | Buffer>, names: readonly string[], precision: Precision | undefined): Promise<Matrix> {
  const preprocess = modelPreprocessing(model.config);
  const resolution = preprocess.resolution;
  const plane = 3 * resolution * resolution;
  const data = new Float32Array(images.length * plane);
  for (let i = 0; i < images.length; i++) {
    data.set((await preprocessImage(images[i]!, preprocess)).data, i * plane);
  }
  const features = asMatrix(await model.encodeImage({ data, shape: [images.length, 3, resolution, resolution] }, { precision }), 'encodeImage output');
  assertFinite(features, { output: 'image features', rows: 'images', names });
  return normalizeRows(features);
}

function scaled(m: Matrix, factor: number): Matrix {
  return { data: m.data.map((v) => v * factor), shape: m.shape };
}
