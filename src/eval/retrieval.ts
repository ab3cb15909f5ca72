// Retrieval evaluation of a caption dataset: every distinct image and every caption encoded once,
// image→text and text→image ranks (src/eval/retrieval-metrics.ts) and the contrastive loss of the
// held-out pairs, plus the worst-ranked queries for the report.
import { captionsByImage } from '../data/captions.js';
import type { Dataset, Sample } from '../data/dataset.js';
import { createLoader } from '../data/loader.js';
import { modelPreprocessing } from '../data/preprocess.js';
import type { ClipModel } from '../model/model.js';
import { DEFAULT_EVAL_BATCH, type EvaluateModelOptions } from './evaluate-options.js';
import { assertFinite } from './finite.js';
import { logitScale } from './logit-scale.js';
import { asMatrix, concatRows, normalizeRows, type Matrix } from './matrix.js';
import { inEvalMode, tokenizerFor } from './model-source.js';
import { contrastiveLoss, rankMetrics, retrievalRanks, type RankMetrics, type RetrievalRanks } from './retrieval-metrics.js';
import { encodeTexts } from './text-features.js';

export type { RankMetrics };

export interface RetrievalMetrics {
  imageToText: RankMetrics;
  textToImage: RankMetrics;
  /** The contrastive loss of the held-out pairs (see contrastiveLoss). */
  loss: number;
}

/** A query ranked far from its target, for the report. Paths are absolute. */
export interface WorstImage {
  image: string;
  /** 1-based rank of its best-ranked caption. */
  rank: number;
  captions: string[];
  /** The caption ranked first instead. */
  top: string;
}

export interface WorstText {
  caption: string;
  image: string;
  /** 1-based rank of its image. */
  rank: number;
  /** The image ranked first instead. */
  top: string;
}

export interface RetrievalEvaluation {
  retrieval: RetrievalMetrics;
  /** Images and captions scored (an unreadable image and its captions are left out). */
  images: number;
  texts: number;
  skipped: number;
  worst: { imageToText: WorstImage[]; textToImage: WorstText[] };
}

/** How many of the worst-ranked queries each direction keeps. */
export const WORST_KEPT = 12;

/** True for a retrieval result (a caption dataset's), false for a zero-shot one. */
export function isRetrieval(result: object): result is RetrievalEvaluation {
  return 'retrieval' in result;
}

/** The mean of R@1 both ways: the default measure of a caption run's best weights. */
export function meanRecallAt1(metrics: RetrievalMetrics): number {
  return (metrics.imageToText.r1 + metrics.textToImage.r1) / 2;
}

/** Image features of the distinct images, in order; an unreadable image leaves its group out. */
async function encodeImages(model: ClipModel, dataset: Dataset, groups: Sample[][], options: EvaluateModelOptions): Promise<{ features: Matrix; kept: Sample[][]; skipped: number }> {
  const firsts: Dataset = { ...dataset, samples: groups.map((g) => g[0]!) };
  const loader = createLoader(firsts, {
    batchSize: options.batchSize ?? DEFAULT_EVAL_BATCH,
    shuffle: false,
    ...modelPreprocessing(model.config),
    cache: options.cache,
    cacheDir: options.cacheDir,
    strict: options.strict,
  });
  const groupOf = new Map(groups.map((g) => [g[0]!, g]));
  const blocks: Matrix[] = [];
  const kept: Sample[][] = [];
  for await (const batch of loader) {
    options.signal?.throwIfAborted();
    const features = asMatrix(await model.encodeImage(batch.images, { precision: options.precision }), 'encodeImage output');
    const context = `(images ${kept.length + 1}–${kept.length + batch.samples.length} of ${groups.length})`;
    assertFinite(features, { output: 'image features', rows: 'images', names: batch.samples.map((s) => s.image), context });
    blocks.push(normalizeRows(features));
    kept.push(...batch.samples.map((s) => groupOf.get(s)!));
    options.onProgress?.({ done: kept.length, total: groups.length });
  }
  if (kept.length === 0) throw new Error(`${dataset.root}: none of the ${groups.length} images could be read`);
  return { features: concatRows(blocks, model.config.embed_dim), kept, skipped: loader.stats().skipped };
}

/**
 * Retrieval metrics of a model on a caption dataset (its samples' `imageIndex` groups the captions of
 * one image). The model is in eval mode for the pass and restored afterwards.
 */
export async function evaluateRetrievalModel(model: ClipModel, dataset: Dataset, options: EvaluateModelOptions = {}): Promise<RetrievalEvaluation> {
  if (dataset.kind !== 'captions') throw new Error(`${dataset.root}: retrieval evaluation needs a caption dataset, not class labels`);
  const groups = captionsByImage({ ...dataset, samples: dataset.samples.map((s, i) => (s.imageIndex === undefined ? { ...s, imageIndex: i } : s)) });
  return inEvalMode(model, async () => {
    const tokenizer = await tokenizerFor(options.tokenizer);
    const images = await encodeImages(model, dataset, groups, options);
    const captions = images.kept.flat();
    const textImage = Int32Array.from(images.kept.flatMap((g, i) => g.map(() => i)));
    const texts = await encodeTexts(model, tokenizer, captions.map((s) => s.caption ?? ''), { precision: options.precision, truncate: true, signal: options.signal });
    const ranks = await retrievalRanks(images.features, texts, textImage);
    const scale = await logitScale(model);
    return {
      retrieval: {
        imageToText: rankMetrics(ranks.imageToText),
        textToImage: rankMetrics(ranks.textToImage),
        loss: contrastiveLoss(images.features, texts, textImage, scale, options.batchSize ?? DEFAULT_EVAL_BATCH),
      },
      images: images.kept.length,
      texts: captions.length,
      skipped: images.skipped,
      worst: worstRanked(ranks, images.kept, captions, textImage),
    };
  });
}

/** The WORST_KEPT queries of each direction with the largest positions (the earlier one first on a tie). */
function worstRanked(ranks: RetrievalRanks, groups: Sample[][], captions: Sample[], textImage: Int32Array): RetrievalEvaluation['worst'] {
  const worst = (positions: Int32Array) =>
    Array.from(positions.keys())
      .sort((a, b) => positions[b]! - positions[a]! || a - b)
      .slice(0, WORST_KEPT);
  return {
    imageToText: worst(ranks.imageToText).map((i) => ({
      image: groups[i]![0]!.image,
      rank: ranks.imageToText[i]! + 1,
      captions: groups[i]!.map((s) => s.caption ?? ''),
      top: captions[ranks.imageTopText[i]!]!.caption ?? '',
    })),
    textToImage: worst(ranks.textToImage).map((t) => ({
      caption: captions[t]!.caption ?? '',
      image: groups[textImage[t]!]![0]!.image,
      rank: ranks.textToImage[t]! + 1,
      top: groups[ranks.textTopImage[t]!]![0]!.image,
    })),
  };
}
