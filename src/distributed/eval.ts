// Zero-shot evaluation sharded across the ranks: each rank scores whole evaluation batches (every
// world-th one, so each image is encoded in the batch it would be in one process), then the counts
// (the confusion matrix, top-k hits, images, skipped ones) are summed over the ranks, and the metrics
// made from them are the single process's.
import type { Dataset } from '../data/dataset.js';
import type { ClassificationMetrics } from '../eval/metrics.js';
import { DEFAULT_EVAL_BATCH, evaluateModel, type EvaluateModelOptions, type EvaluateResult } from '../eval/zero-shot.js';
import type { ClipModel } from '../model/model.js';
import type { RunGroup } from './run-group.js';
import { evalShard } from './shard.js';

/** The metrics of counts, as MetricsAccumulator.result() makes them. */
export function metricsFromCounts(classes: readonly string[], confusion: number[][], hitsTopK: number, n: number): ClassificationMetrics {
  const correct = confusion.reduce((sum, row, i) => sum + row[i]!, 0);
  const perClass = Object.fromEntries(
    classes.map((name, i) => {
      const row = confusion[i]!;
      const count = row.reduce((a, b) => a + b, 0);
      return [name, { accuracy: count > 0 ? row[i]! / count : 0, n: count }];
    }),
  );
  return {
    top1: n > 0 ? correct / n : 0,
    top5: n > 0 ? hitsTopK / n : 0,
    topK: Math.min(5, classes.length),
    n,
    classes: [...classes],
    perClass,
    confusion: confusion.map((row) => [...row]),
  };
}

/** The dataset's samples this rank evaluates (see evalShard). */
export function evalPart(dataset: Dataset, batchSize: number, rank: number, worldSize: number): Dataset {
  return { ...dataset, samples: evalShard(dataset.samples.length, batchSize, rank, worldSize).map((i) => dataset.samples[i]!) };
}

/** evaluateModel over all ranks: every rank calls it, every rank gets the whole dataset's result. */
export async function evaluateSharded(group: RunGroup, model: ClipModel, dataset: Dataset, options: EvaluateModelOptions = {}): Promise<EvaluateResult> {
  if (!group.distributed) return evaluateModel(model, dataset, options);
  const batchSize = options.batchSize ?? DEFAULT_EVAL_BATCH;
  // A rank that fails here (an unreadable image under --strict, non-finite scores) fails the others
  // at the sum below, naming it.
  const part = await group.together('in the evaluation', () => evaluateModel(model, evalPart(dataset, batchSize, group.rank, group.worldSize), { ...options, batchSize }));
  const mine = part!;
  const classes = mine.classes;
  // hits / n is top5: hits is an integer, recovered exactly.
  const hits = Math.round(mine.top5 * mine.n);
  const sums = await group.sum([...mine.confusion.flat(), hits, mine.n, mine.skipped]);
  const c = classes.length;
  const confusion = Array.from({ length: c }, (_, i) => sums.slice(i * c, (i + 1) * c));
  const [totalHits, n, skipped] = sums.slice(c * c);
  return { ...metricsFromCounts(classes, confusion, totalHits!, n!), templates: mine.templates, skipped: skipped! };
}
