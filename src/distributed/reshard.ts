// A resume at another world size. What the optimizer steps average over is the global batch
// (batchSize per rank × ranks): a checkpoint continues bitwise only at its own world size and batch;
// at another world size with the same global batch it can continue with --allow-reshard (the same
// global batches, re-sliced over the ranks: not bitwise, since the ranks' sums round otherwise);
// another global batch is refused.
import type { CompatRecord } from '../train/resume-compat.js';

export interface WorldCheck {
  /** The checkpoint's record as this run compares it (batchSize and worldSize made this run's when re-sliced). */
  record: CompatRecord;
  /** Set when the run continues re-sliced. */
  resharded?: { worldSize: number; batchSize: number };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Checks a checkpoint's world size and per-rank batch against this run's. The same world size passes
 * (a batch size that differs there is one of the record's differences, reported with the others).
 */
export function checkWorld(file: string, saved: CompatRecord, run: CompatRecord, allowReshard: boolean): WorldCheck {
  const savedWorld = typeof saved.worldSize === 'number' ? saved.worldSize : 1;
  const runWorld = run.worldSize as number;
  const savedBatch = saved.batchSize;
  const runBatch = run.batchSize as number;
  if (savedWorld === runWorld || typeof savedBatch !== 'number') return { record: saved };
  const savedGlobal = savedBatch * savedWorld;
  const runGlobal = runBatch * runWorld;
  const was = `${plural(savedWorld, 'rank')} × --batch-size ${savedBatch}`;
  const is = `${plural(runWorld, 'rank')} × --batch-size ${runBatch}`;
  if (savedGlobal !== runGlobal) {
    const fit =
      savedGlobal % runWorld === 0
        ? `resume on ${plural(runWorld, 'rank')} with --batch-size ${savedGlobal / runWorld} (per rank) and --allow-reshard, or on ${plural(savedWorld, 'rank')} with --batch-size ${savedBatch}`
        : `resume on ${plural(savedWorld, 'rank')} with --batch-size ${savedBatch} (${savedGlobal} is not a multiple of ${runWorld})`;
    throw new Error(
      `cannot resume from ${file}: its global batch is ${savedGlobal} (${was}), this run's would be ${runGlobal} (${is}). ` +
        `The global batch is what each optimizer step averages over and what the learning rate was chosen for; ${fit}.`,
    );
  }
  if (!allowReshard) {
    throw new Error(
      `cannot resume from ${file} as it is: it was trained on ${was}, this run has ${is} (the same global batch of ${savedGlobal}). ` +
        `It continues bitwise only on ${plural(savedWorld, 'rank')}; --allow-reshard continues on ${plural(runWorld, 'rank')} with the same ` +
        `global batches re-sliced (equal up to floating-point rounding).`,
    );
  }
  return { record: { ...saved, worldSize: runWorld, batchSize: runBatch }, resharded: { worldSize: savedWorld, batchSize: savedBatch } };
}
