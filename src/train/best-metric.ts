// Which evaluation number chooses `<name>_best.safetensors`, and whether a new value beats the best.
import type { DatasetKind } from '../data/dataset.js';
import { isRetrieval, type RetrievalEvaluation } from '../eval/retrieval.js';
import type { EvaluateResult } from '../eval/zero-shot.js';
import { ConfigError, type BestMetric } from './config.js';

const LABEL_METRICS: readonly BestMetric[] = ['top1', 'top5'];

/** 'auto' made concrete for the dataset's kind; a measure the evaluation will not have is refused. */
export function resolveBestMetric(metric: BestMetric, kind: DatasetKind): Exclude<BestMetric, 'auto'> {
  if (metric === 'auto') return kind === 'labels' ? 'top1' : 'mean-r1';
  if ((kind === 'labels') !== LABEL_METRICS.includes(metric)) {
    const fits = kind === 'labels' ? LABEL_METRICS.join(', ') : 'mean-r1, mean-r5, mean-r10, i2t-r1, t2i-r1, val-loss';
    throw new ConfigError([`bestMetric: ${metric} is not measured on a dataset of ${kind} (use auto, ${fits})`]);
  }
  return metric;
}

/** The measure's value in an evaluation. */
export function metricValue(metric: Exclude<BestMetric, 'auto'>, evaluation: EvaluateResult | RetrievalEvaluation): number {
  if (!isRetrieval(evaluation)) return metric === 'top5' ? evaluation.top5 : evaluation.top1;
  const { imageToText: i2t, textToImage: t2i, loss } = evaluation.retrieval;
  switch (metric) {
    case 'mean-r5':
      return (i2t.r5 + t2i.r5) / 2;
    case 'mean-r10':
      return (i2t.r10 + t2i.r10) / 2;
    case 'i2t-r1':
      return i2t.r1;
    case 't2i-r1':
      return t2i.r1;
    case 'val-loss':
      return loss;
    default:
      return (i2t.r1 + t2i.r1) / 2;
  }
}

/** True when `value` beats `best` (none yet: always); the loss is better lower, the rest higher. */
export function isBetter(metric: Exclude<BestMetric, 'auto'>, value: number, best: number | undefined): boolean {
  if (best === undefined) return true;
  return metric === 'val-loss' ? value < best : value > best;
}
