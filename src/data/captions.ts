// Several captions per image: which captions an epoch trains on, and the distinct images of a
// caption dataset. A sample's `imageIndex` (set when the dataset is loaded) says which image it shows.
import { createRng } from '../util/prng.js';
import type { Dataset, Sample } from './dataset.js';

/** 'one': each image once per epoch with one of its captions; 'all': every (image, caption) row. */
export type CaptionsMode = 'one' | 'all';

export const CAPTIONS_MODES: readonly CaptionsMode[] = ['one', 'all'];

/** The samples of a caption dataset grouped by image, in order of `imageIndex`. */
export function captionsByImage(dataset: Dataset): Sample[][] {
  const groups: Sample[][] = [];
  for (const sample of dataset.samples) {
    const index = sample.imageIndex;
    if (index === undefined) throw new Error(`${sample.source.file}:${sample.source.line}: caption sample without an image index (load the dataset with loadDataset)`);
    (groups[index] ??= []).push(sample);
  }
  return groups.filter((g) => g !== undefined);
}

/**
 * The dataset one epoch trains on. Labelled data and mode 'all' are the dataset itself; mode 'one'
 * keeps one sample per image, its caption drawn from a generator keyed on (seed, epoch, image index),
 * so any epoch (and a resume inside it) sees the same captions without replaying the earlier ones.
 */
export function captionEpoch(dataset: Dataset, mode: CaptionsMode, seed: number, epoch: number): Dataset {
  if (dataset.kind !== 'captions' || mode === 'all') return dataset;
  const groups = captionsByImage(dataset);
  if (groups.length === dataset.samples.length) return dataset;
  const samples = groups.map((captions) => (captions.length === 1 ? captions[0]! : captions[createRng(seed, epoch, captions[0]!.imageIndex!).nextInt(captions.length)]!));
  return { ...dataset, samples };
}

/** Group ids for a batch's multi-positive targets: captions of one image are each other's positives. */
export function imageGroups(samples: readonly Sample[]): Int32Array {
  return Int32Array.from(samples, (s) => s.imageIndex ?? -1);
}
