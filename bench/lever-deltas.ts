// Each experiment row of a bench/gpu.sh run against the rows it adds one experiment to: the same
// model, batch and variant otherwise, measured in the same run. A lever's effect reads off one line.

export interface MeasuredStep {
  model: string;
  batch: number;
  msPerStep: number;
  imagesPerSecond: number;
  cudaGraph?: string;
  memoryFormat?: string;
  pixels?: string;
  syncEveryStep?: boolean;
  /** CLIP_NATIVE_EXPERIMENTS of the row, comma-separated; absent for the default path. */
  experiments?: string;
}

export interface LeverDelta<T extends MeasuredStep> {
  row: T;
  /** The one experiment `row` has and `base` has not. */
  lever: string;
  base: T;
  /** row − base: negative is faster. */
  msDelta: number;
  /** Images/s gained, percent of base's. */
  imagesPercent: number;
}

const experimentSet = (r: MeasuredStep) => (r.experiments ?? '').split(',').filter(Boolean).sort();

const sameVariant = (a: MeasuredStep, b: MeasuredStep) =>
  a.model === b.model &&
  a.batch === b.batch &&
  (a.cudaGraph ?? 'off') === (b.cudaGraph ?? 'off') &&
  (a.memoryFormat ?? 'auto') === (b.memoryFormat ?? 'auto') &&
  (a.pixels ?? 'uint8') === (b.pixels ?? 'uint8') &&
  Boolean(a.syncEveryStep) === Boolean(b.syncEveryStep);

/** For every row with experiments, one line per experiment whose removal leaves a measured row. */
export function leverDeltas<T extends MeasuredStep>(steps: T[]): LeverDelta<T>[] {
  const deltas: LeverDelta<T>[] = [];
  for (const row of steps) {
    const mine = experimentSet(row);
    for (const lever of mine) {
      const rest = mine.filter((e) => e !== lever).join(',');
      const base = steps.find((b) => b !== row && sameVariant(b, row) && experimentSet(b).join(',') === rest);
      if (!base) continue;
      deltas.push({
        row,
        lever,
        base,
        msDelta: row.msPerStep - base.msPerStep,
        imagesPercent: (100 * (row.imagesPerSecond - base.imagesPerSecond)) / base.imagesPerSecond,
      });
    }
  }
  return deltas;
}
