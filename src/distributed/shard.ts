// Which samples each rank trains on, so that data parallel training is the single process on the
// global batch: global batch k of an epoch is the single process's batch k of size batch × world (the
// same seeded order), and rank r takes its r-th slice of it. The arithmetic lives here, pure, so the
// loader, the loop and the tests share it.

/**
 * The rank's part of an epoch's order (indices into the samples), in the order it trains them: its
 * slice of each global batch, one after another. Every rank gets the same number of samples:
 *
 * - a full global batch (batch × world samples) gives each rank `batch` samples;
 * - a last, smaller global batch of m samples (without dropLast) gives each rank ⌊m / world⌋: its
 *   first ⌊m / world⌋ · world samples are trained, split in rank order, and the rest (fewer than
 *   `world`) are left out of that epoch; when m < world (or with dropLast) it is left out whole.
 *
 * With world 1 this is the order itself (dropLast as the loader has it).
 */
export function shardOrder(order: ArrayLike<number>, batchSize: number, rank: number, worldSize: number, dropLast: boolean): Int32Array {
  checkShard(batchSize, rank, worldSize);
  const { full, lastPerRank } = globalBatches(order.length, batchSize, worldSize, dropLast);
  const global = batchSize * worldSize;
  const out = new Int32Array(full * batchSize + lastPerRank);
  for (let k = 0; k < full; k++) {
    const from = k * global + rank * batchSize;
    for (let i = 0; i < batchSize; i++) out[k * batchSize + i] = order[from + i]!;
  }
  const from = full * global + rank * lastPerRank;
  for (let i = 0; i < lastPerRank; i++) out[full * batchSize + i] = order[from + i]!;
  return out;
}

/** Full global batches of an epoch of n samples, and the per-rank size of a last, smaller one (0: none). */
export function globalBatches(n: number, batchSize: number, worldSize: number, dropLast: boolean): { full: number; lastPerRank: number } {
  const global = batchSize * worldSize;
  const full = Math.floor(n / global);
  const rest = n - full * global;
  return { full, lastPerRank: dropLast ? 0 : Math.floor(rest / worldSize) };
}

/** Batches (= optimizer micro-steps) per epoch on every rank. */
export function batchesPerEpoch(n: number, batchSize: number, worldSize: number, dropLast: boolean): number {
  const { full, lastPerRank } = globalBatches(n, batchSize, worldSize, dropLast);
  return full + (lastPerRank > 0 ? 1 : 0);
}

/** Samples of an epoch of n that no rank trains on (the remainder of a last global batch). */
export function samplesLeftOut(n: number, batchSize: number, worldSize: number, dropLast: boolean): number {
  const { full, lastPerRank } = globalBatches(n, batchSize, worldSize, dropLast);
  return n - (full * batchSize + lastPerRank) * worldSize;
}

/**
 * The rank's share of an evaluation over `n` samples in batches of `batchSize`: whole batches, every
 * world-th one (batch i to rank i mod world), so that each image is encoded in the batch it would be in
 * one process (the same numbers). Indices in order.
 */
export function evalShard(n: number, batchSize: number, rank: number, worldSize: number): number[] {
  checkShard(batchSize, rank, worldSize);
  const out: number[] = [];
  for (let start = rank * batchSize; start < n; start += batchSize * worldSize) {
    for (let i = start; i < Math.min(n, start + batchSize); i++) out.push(i);
  }
  return out;
}

/**
 * Where a rank's loader starts in its part of the order when a run resumes at (global) batch `batch`
 * of an epoch: `batch` slices of `batchSize` in, when no image was skipped before it.
 */
export function shardCursor(batch: number, batchSize: number): number {
  return batch * batchSize;
}

function checkShard(batchSize: number, rank: number, worldSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new RangeError(`worldSize must be a positive integer, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new RangeError(`rank ${rank} is not in a world of size ${worldSize}`);
}
