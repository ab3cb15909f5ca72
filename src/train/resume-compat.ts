// What a checkpoint's state depends on, recorded in its metadata, so that a resume with settings that
// would mix two runs (another dataset, batch size, optimizer, learning rate…) is refused, naming each
// difference, instead of silently training on. docs/resume.md lists what may change.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { resolveAugmentation } from '../data/augment.js';
import type { Dataset } from '../data/dataset.js';
import { canonicalModelName, type ClipConfig } from '../model/config.js';
import type { Precision } from '../model/model.js';
import { sha256File } from '../util/download.js';
import type { TrainConfig } from './config.js';

/** The checkpoint metadata key that holds the record (JSON). */
export const COMPAT_METADATA_KEY = 'compat';

/** Options that may differ between a run and its resume: they change no state the checkpoint holds. */
export const SAFE_TO_CHANGE_ON_RESUME: ReadonlyArray<keyof TrainConfig> = [
  'epochs',
  'logEvery',
  'evalEvery',
  'evalSplit',
  'weightsEvery',
  'checkpointEvery',
  'keepLast',
  'savePt',
  'workers',
  'decodeThreads',
  // Pillow's or libvips' resize: the same images within a few uint8 steps (docs/data.md), so a run
  // made before Pillow's became the default resumes with it.
  'resample',
  'prefetch',
  'cache',
  'memoryCacheMiB',
  'maxBadFraction',
  'strict',
  'device',
  'cudaGraph',
  'gradCheckpointing',
  'maxNonFiniteSteps',
  'name',
  'out',
  'data',
  'imagesDir',
  'ext',
  'resume',
  'overwrite',
  'distTimeout',
  'allowReshard',
  'bestMetric',
];

export type CompatRecord = Record<string, unknown>;

/** sha256 of the training list: each sample's image (relative to the dataset root), label and caption, in order. */
export function datasetHash(dataset: Dataset): string {
  const hash = createHash('sha256');
  for (const s of dataset.samples) {
    hash.update(`${path.relative(dataset.root, s.image).split(path.sep).join('/')}\t${s.label ?? ''}\t${s.caption ?? ''}\n`);
  }
  return hash.digest('hex');
}

/**
 * What the run starts from: a released model's name, the sha256 of a weight file, or the random
 * initialisation of an architecture (with the seed, recorded separately). Undefined when the file is
 * gone (a resumed fine-tuning run needs only its checkpoint): then it cannot be compared.
 */
export async function initialWeightsId(config: Pick<TrainConfig, 'model' | 'init'>, architecture: ClipConfig): Promise<string | undefined> {
  if (config.init === 'random') return `random:${createHash('sha256').update(JSON.stringify(architecture)).digest('hex')}`;
  const released = canonicalModelName(config.model);
  if (released && !existsSync(config.model)) return `released:${released}`;
  if (!existsSync(config.model)) return undefined;
  return `sha256:${await sha256File(config.model)}`;
}

/** The record of a run: the options its state depends on, and what they resolve to. */
export function compatRecord(
  config: TrainConfig,
  resolved: { precision: Precision; architecture: ClipConfig; initialWeights: string | undefined; dataset: string; worldSize: number },
): CompatRecord {
  const released = canonicalModelName(config.model);
  const record: CompatRecord = {
    model: released && !existsSync(config.model) ? released : path.basename(config.model),
    init: config.init,
    // null: unknown (stored as such, where undefined would vanish from the JSON).
    initialWeights: resolved.initialWeights ?? null,
    architecture: resolved.architecture,
    dataset: resolved.dataset,
    trainSplit: config.trainSplit,
    batchSize: config.batchSize,
    worldSize: resolved.worldSize,
    accumulate: config.accumulate,
    dropLast: config.dropLast,
    seed: config.seed,
    optimizer: config.optimizer,
    lr: config.lr,
    betas: config.betas,
    eps: config.eps,
    weightDecay: config.weightDecay,
    gradClip: config.gradClip,
    schedule: config.schedule,
    precision: resolved.precision,
    lockImage: config.lockImage,
    lockText: config.lockText,
    freeze: config.freeze,
    batchNorm: config.batchNorm,
    multiPositive: config.multiPositive,
    templates: config.templates,
  };
  // Only where it changes what is trained: a record without it is that of the default.
  if (config.captions !== 'one') record.captions = config.captions;
  // Only when on: runs made before text cleaning existed tokenized without it, and record nothing.
  if (config.fixText) record.fixText = true;
  // Only where groups are contrastive: a record without it is that of independent micro-batches, the
  // only accumulation before this option existed.
  if (config.accumulate > 1 && config.accumulateMode === 'contrastive') record.accumulateMode = config.accumulateMode;
  // Only the chosen schedule's own settings.
  if (config.schedule === 'step') Object.assign(record, { stepEvery: config.stepEvery, gamma: config.gamma });
  if (config.schedule === 'cosine') record.warmup = config.warmup;
  // Only when on, resolved (true and its defaults spelt out are one setting): a run without it keeps
  // the record checkpoints made before augmentation existed.
  const augment = resolveAugmentation(config.augment);
  if (augment) record.augment = augment;
  return record;
}

export interface CompatDifference {
  key: string;
  checkpoint: unknown;
  run: unknown;
}

/**
 * Keys whose values differ. A key unknown (null) on either side (the initial weight file is gone) is
 * `unchecked`; a key one record lacks is a difference, unless it belongs to a schedule that differs anyway.
 */
export function compatDifferences(checkpoint: CompatRecord, run: CompatRecord): { differences: CompatDifference[]; unchecked: string[] } {
  const differences: CompatDifference[] = [];
  const unchecked: string[] = [];
  const schedulesDiffer = checkpoint.schedule !== run.schedule;
  for (const key of new Set([...Object.keys(checkpoint), ...Object.keys(run)])) {
    const inBoth = key in checkpoint && key in run;
    if (!inBoth && schedulesDiffer && ['stepEvery', 'gamma', 'warmup'].includes(key)) continue;
    const a = checkpoint[key];
    const b = run[key];
    if (inBoth && (a === null || b === null)) {
      unchecked.push(key);
      continue;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) differences.push({ key, checkpoint: a, run: b });
  }
  return { differences, unchecked };
}

const show = (v: unknown) => (v === undefined ? '(not recorded)' : typeof v === 'string' ? v : JSON.stringify(v));

/** The refusal of a resume whose settings differ from the checkpoint's, one line per key. */
export function compatError(file: string, differences: CompatDifference[]): Error {
  const lines = differences.map((d) => {
    const note =
      d.key === 'architecture'
        ? ' (the checkpoint was made for another architecture)'
        : d.key === 'fixText'
          ? ' (runs before text cleaning existed tokenized without it: resume them with --no-fix-text)'
          : '';
    return `  ${d.key}: checkpoint ${show(d.checkpoint)}, this run ${show(d.run)}${note}`;
  });
  return new Error(
    `cannot resume from ${file}: ${differences.length} setting(s) its state depends on differ from this run's:\n${lines.join('\n')}\n` +
      `Resume with the checkpoint's values, or start a new run (another --out, or --overwrite). ` +
      `Options that may change on resume: ${SAFE_TO_CHANGE_ON_RESUME.join(', ')} (docs/resume.md).`,
  );
}
