// The ranks' batches in step: before each batch the ranks agree (one small all-reduce) whether to stop
// here, because any of them was interrupted, and on the batch size, because the step's collectives
// need the same size on every rank. Without skipped images every rank has a full batch (or the same
// last one) and nothing changes; a rank that skipped an image refills from its own part of the order,
// so at an epoch's end its last batch may be smaller or missing: then every rank cuts its batch to the
// smallest, and the epoch ends on all ranks when any has none left.
import type { Batch } from '../data/loader.js';
import type { RunGroup } from './run-group.js';

/** The first `size` samples of a batch (the same memory, not a copy). */
export function trimBatch(batch: Batch, size: number): Batch {
  if (size >= batch.samples.length) return batch;
  const per = batch.images.data.length / batch.samples.length;
  const images =
    batch.images.data instanceof Uint8Array
      ? { data: batch.images.data.subarray(0, size * per), shape: [size, ...batch.images.shape.slice(1)] as [number, number, number, 3] }
      : { data: batch.images.data.subarray(0, size * per), shape: [size, ...batch.images.shape.slice(1)] as [number, 3, number, number] };
  return {
    ...batch,
    images,
    samples: batch.samples.slice(0, size),
    labelIndices: batch.labelIndices?.subarray(0, size),
    ...(batch.captions ? { captions: batch.captions.slice(0, size) } : {}),
  };
}

/**
 * `batches`, agreed with the other ranks before each one. `wantStop()` is asked at each boundary (it
 * should say true only where this rank may stop: between optimizer steps, which every rank reaches
 * together); when any rank wants to, every rank calls `onStop()` and the iteration ends there, before
 * that batch, on all ranks.
 */
export async function* agreedBatches(group: RunGroup, batches: AsyncIterable<Batch>, wantStop: () => boolean, onStop: () => void): AsyncGenerator<Batch> {
  const iterator = batches[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await iterator.next();
      const batch = next.done ? undefined : next.value;
      const agreed = await group.agreeStep(wantStop(), batch?.samples.length ?? 0);
      if (agreed.stop) {
        onStop();
        return;
      }
      if (agreed.size === 0 || !batch) return;
      yield trimBatch(batch, agreed.size);
    }
  } finally {
    await iterator.return?.();
  }
}
