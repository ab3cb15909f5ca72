// The training run's configuration: defaults that reproduce the blog's recipe without its bugs,
// a JSON or YAML file, then flags on top; every invalid value reported at once with its key.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import YAML from 'yaml';

import { augmentProblems, type AugmentOptions } from '../data/augment.js';
import { RESAMPLE_MODES, type ResampleMode } from '../data/preprocess.js';
import type { Precision } from '../model/model.js';

export interface TrainConfig {
  /** Dataset: blog layout folder, folder per class, or .csv/.tsv/.jsonl. */
  data: string;
  /** Images folder and extension of the blog layout. */
  imagesDir: string;
  ext: string;
  trainSplit: 'train' | 'test';
  evalSplit: 'train' | 'test';
  /** A released model name, a weight file, or (with init 'random') a JSON file holding a model configuration. */
  model: string;
  init: 'pretrained' | 'random';
  out: string;
  /** Prefix of the per-epoch weight files; default: the model name made file-safe. */
  name?: string;

  epochs: number;
  /** Per rank; 'auto' (CUDA): the largest power of two whose train step fits, found with real steps. */
  batchSize: number | 'auto';
  optimizer: 'adam' | 'adamw';
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /** step: ×gamma every `stepEvery` epochs (StepLR); cosine: linear warm-up over `warmup` steps then cosine to 0. */
  schedule: 'step' | 'cosine' | 'constant';
  stepEvery: number;
  gamma: number;
  warmup: number;
  gradClip: number;
  accumulate: number;
  /** How --accumulate's micro-batches combine: one contrastive batch (default) or independent losses (trainer.ts). */
  accumulateMode: 'contrastive' | 'independent';
  /** Recompute activations in backward (each transformer block, each ResNet stage): less memory, more time. */
  gradCheckpointing: boolean;
  lockImage: boolean;
  lockText: boolean;
  freeze: string[];
  batchNorm: 'frozen' | 'train';
  /** Same-label pairs are positives: 'auto' = on for labelled data, off for captions. */
  multiPositive: 'auto' | 'on' | 'off';
  /** Caption data with several captions per image: 'one' trains each image once per epoch with one
   * caption drawn per (seed, epoch, image); 'all' trains every (image, caption) row, the captions of one
   * image in a batch each other's positives (unless multiPositive is 'off'). */
  captions: 'one' | 'all';
  /** What chooses `<name>_best.safetensors` (BEST_METRICS); 'auto': top1 for labels, mean-r1 (the mean of
   * R@1 image→text and text→image) for captions. */
  bestMetric: BestMetric;
  /** Clean every caption and prompt as ftfy's fix_text does before tokenizing (as openai/CLIP and open_clip do; docs/text.md). */
  fixText: boolean;
  /** Prompt template(s): a set name ('blog', 'default', 'openai-imagenet') or one template with {label}. */
  templates: string;

  seed: number;
  /** 'auto': the first CUDA device when there is one, else the CPU. */
  device: string;
  /** 'auto': bf16 on a CUDA device that supports it (compute capability ≥ 8), fp16 on another CUDA device, fp32 on the CPU (loop.ts resolvePrecision). */
  precision: Precision | 'auto';
  dropLast: boolean;
  /** Replay the train step as a CUDA graph (on CUDA with accumulate 1); a smaller last batch runs eagerly. */
  cudaGraph: boolean;
  /** Images read and decoded at once; 'auto': twice the CPU cores, at least 4. */
  workers: number | 'auto';
  /** Worker threads that decode images and write the crop cache; 'auto': none below 4 cores, else a
   * quarter of them, at most 4; 0: the main thread. */
  decodeThreads: number | 'auto';
  /** How images are resized: 'pillow' (Pillow's bicubic to the bit, as the pretrained models saw them)
   * or 'libvips' (sharp's cubic, faster, a few uint8 steps off on sharp edges: docs/data.md). */
  resample: ResampleMode;
  prefetch: number;
  cache: boolean;
  /** MiB of preprocessed crops kept in memory between epochs (0: none); 'auto': a quarter of the
   * memory, at most half of what is free at the start. */
  memoryCacheMiB: number | 'auto';
  strict: boolean;
  /** Stop when more than this fraction of a split's entries is unreadable (or all of them); each is in skipped.tsv. */
  maxBadFraction: number;

  logEvery: number;
  /** Per-epoch weight files every N epochs and after the last (1: every epoch, the blog's; 0: the last only). */
  weightsEvery: number;
  checkpointEvery: number;
  /** Also write each epoch's weights as a .pt that torch.load reads. */
  savePt: boolean;
  /** Keep only the newest N full checkpoints (0: keep all). */
  keepLast: number;
  /** Evaluation every N epochs (0: never), plus one before the first epoch: zero-shot accuracy for
   * labels, retrieval metrics and the validation loss for captions. */
  evalEvery: number;
  /** Stop after this many consecutive non-finite training losses, with a checkpoint of the last finite
   * state when there is one, and an error (`maxNonFinite` is its old name, still read). */
  maxNonFiniteSteps: number;
  /** Resume from a checkpoint file, or 'latest' in `out`. */
  resume?: string;
  /** Start a new run in an `out` that holds one: its files are removed first (without this or
   * `resume`, such a directory is refused). */
  overwrite: boolean;
  /** Data parallel (several ranks): seconds any wait for the other ranks may take (joining, each
   * collective, a barrier while rank 0 writes) before it ends with an error. */
  distTimeout: number;
  /** Resume a checkpoint made with another world size but the same global batch (batchSize × ranks),
   * its batches re-sliced over this run's ranks. */
  allowReshard: boolean;
  /** Data parallel: each rank's contrastive loss over its own batch only, instead of its rows against
   * every rank's features (the global batch's negatives, open_clip's gather_with_grad). */
  localLossOnly: boolean;
  /** Training augmentation: false (default), true (open_clip's defaults: a random resized crop of 90–100 % of the area),
   * or options (src/data/augment.ts; docs/data.md). */
  augment: boolean | AugmentOptions;
}

/** Measures `bestMetric` may name: zero-shot ones for labels, retrieval ones for captions. */
export const BEST_METRICS = ['auto', 'top1', 'top5', 'mean-r1', 'mean-r5', 'mean-r10', 'i2t-r1', 't2i-r1', 'val-loss'] as const;
export type BestMetric = (typeof BEST_METRICS)[number];

export const DEFAULT_CONFIG: Omit<TrainConfig, 'data' | 'out'> = {
  imagesDir: 'images',
  ext: 'jpg',
  trainSplit: 'train',
  evalSplit: 'test',
  model: 'RN50',
  init: 'pretrained',
  epochs: 30,
  batchSize: 4,
  optimizer: 'adam',
  lr: 1e-6,
  betas: [0.9, 0.98],
  eps: 1e-6,
  weightDecay: 0.001,
  schedule: 'step',
  stepEvery: 10,
  gamma: 0.1,
  warmup: 0,
  gradClip: 0,
  accumulate: 1,
  accumulateMode: 'contrastive',
  gradCheckpointing: false,
  lockImage: false,
  lockText: false,
  freeze: [],
  batchNorm: 'frozen',
  multiPositive: 'auto',
  captions: 'one',
  bestMetric: 'auto',
  fixText: true,
  templates: 'blog',
  seed: 0,
  device: 'auto',
  precision: 'auto',
  dropLast: false,
  cudaGraph: true,
  workers: 'auto',
  decodeThreads: 'auto',
  resample: 'pillow',
  prefetch: 2,
  cache: true,
  memoryCacheMiB: 'auto',
  strict: false,
  maxBadFraction: 0.01,
  logEvery: 4,
  weightsEvery: 1,
  checkpointEvery: 4,
  savePt: false,
  keepLast: 0,
  evalEvery: 0,
  maxNonFiniteSteps: 10,
  overwrite: false,
  distTimeout: 300,
  allowReshard: false,
  localLossOnly: false,
  augment: false,
};

/** Old option names still read, and the names they have now. */
export const CONFIG_ALIASES: Readonly<Record<string, keyof TrainConfig>> = { maxNonFinite: 'maxNonFiniteSteps' };

type Check = (value: unknown) => string | undefined;

const positiveInt: Check = (v) => (Number.isInteger(v) && (v as number) > 0 ? undefined : 'must be a positive integer');
const nonNegativeInt: Check = (v) => (Number.isInteger(v) && (v as number) >= 0 ? undefined : 'must be a non-negative integer');
const nonNegative: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : 'must be a non-negative number');
const positive: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? undefined : 'must be a positive number');
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const text: Check = (v) => (typeof v === 'string' && v.length > 0 ? undefined : 'must be a non-empty string');
const oneOf =
  (...values: string[]): Check =>
  (v) =>
    values.includes(v as string) ? undefined : `must be one of ${values.join(', ')}`;

const CHECKS: Record<keyof TrainConfig, Check> = {
  data: text,
  imagesDir: text,
  ext: (v) => (typeof v === 'string' ? undefined : 'must be a string'),
  trainSplit: oneOf('train', 'test'),
  evalSplit: oneOf('train', 'test'),
  model: text,
  init: oneOf('pretrained', 'random'),
  out: text,
  name: (v) => (v === undefined || (typeof v === 'string' && /^[\w.-]+$/.test(v)) ? undefined : 'must use letters, digits, _ . - only'),
  epochs: positiveInt,
  batchSize: (v) => (v === 'auto' ? undefined : positiveInt(v)),
  optimizer: oneOf('adam', 'adamw'),
  lr: nonNegative,
  betas: (v) =>
    Array.isArray(v) && v.length === 2 && v.every((b) => typeof b === 'number' && b >= 0 && b < 1) ? undefined : 'must be [beta1, beta2] in [0, 1)',
  eps: positive,
  weightDecay: nonNegative,
  schedule: oneOf('step', 'cosine', 'constant'),
  stepEvery: positiveInt,
  gamma: positive,
  warmup: nonNegativeInt,
  gradClip: nonNegative,
  accumulate: positiveInt,
  accumulateMode: oneOf('contrastive', 'independent'),
  gradCheckpointing: bool,
  lockImage: bool,
  lockText: bool,
  freeze: (v) => {
    if (!Array.isArray(v) || !v.every((p) => typeof p === 'string')) return 'must be a list of regular expressions';
    for (const p of v) {
      try {
        new RegExp(p);
      } catch {
        return `'${p}' is not a valid regular expression`;
      }
    }
    return undefined;
  },
  batchNorm: oneOf('frozen', 'train'),
  multiPositive: oneOf('auto', 'on', 'off'),
  captions: oneOf('one', 'all'),
  bestMetric: oneOf(...BEST_METRICS),
  fixText: bool,
  templates: text,
  seed: nonNegativeInt,
  device: (v) => (typeof v === 'string' && /^(auto|cpu|cuda(:\d+)?)$/.test(v) ? undefined : 'must be auto, cpu, cuda or cuda:<n>'),
  precision: oneOf('auto', 'fp32', 'bf16', 'fp16'),
  dropLast: bool,
  cudaGraph: bool,
  workers: (v) => (v === 'auto' ? undefined : positiveInt(v)),
  decodeThreads: (v) => (v === 'auto' ? undefined : nonNegativeInt(v)),
  resample: (v) => (RESAMPLE_MODES.includes(v as ResampleMode) ? undefined : `must be one of ${RESAMPLE_MODES.join(', ')}`),
  prefetch: positiveInt,
  cache: bool,
  memoryCacheMiB: (v) => (v === 'auto' ? undefined : nonNegative(v)),
  strict: bool,
  maxBadFraction: (v) => (typeof v === 'number' && v >= 0 && v <= 1 ? undefined : 'must be a fraction in [0, 1]'),
  logEvery: positiveInt,
  weightsEvery: nonNegativeInt,
  checkpointEvery: nonNegativeInt,
  savePt: bool,
  keepLast: nonNegativeInt,
  evalEvery: nonNegativeInt,
  maxNonFiniteSteps: positiveInt,
  resume: (v) => (v === undefined || (typeof v === 'string' && v.length > 0) ? undefined : 'must be a checkpoint path or latest'),
  overwrite: bool,
  distTimeout: (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? undefined : 'must be a positive number of seconds'),
  allowReshard: bool,
  localLossOnly: bool,
  // Reported by configProblems one problem per key (augment.scale: …).
  augment: (v) => augmentProblems(v).join('; ') || undefined,
};

/** `table[key]` when `key` is the table's own: `__proto__`, `constructor`, `toString` … are no options. */
function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/** The known option an unknown key most likely meant: same letters ignoring case, `-` and `_`, or one edit away. */
function didYouMean(key: string): string | undefined {
  const fold = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const wanted = fold(key);
  let best: { name: string; distance: number } | undefined;
  for (const name of [...Object.keys(CHECKS), ...Object.keys(CONFIG_ALIASES)]) {
    const distance = editDistance(wanted, fold(name));
    if (distance <= Math.min(2, Math.floor(name.length / 4)) && (!best || distance < best.distance)) best = { name: own(CONFIG_ALIASES, name) ?? name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid training configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Every problem of a partial configuration, as `key: message`. Unknown keys are problems too. */
export function configProblems(config: Record<string, unknown>, source = ''): string[] {
  const problems: string[] = [];
  const where = source ? `${source}: ` : '';
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    const check = own(CHECKS, own(CONFIG_ALIASES, key) ?? key);
    if (!check) {
      const meant = didYouMean(key);
      problems.push(`${where}${key}: unknown option${meant ? ` (did you mean ${meant}?)` : ''}`);
      continue;
    }
    if (key === 'augment') {
      problems.push(...augmentProblems(value).map((p) => `${where}${p}`));
      continue;
    }
    const message = check(value);
    if (message) problems.push(`${where}${key}: ${message} (got ${JSON.stringify(value)})`);
  }
  return problems;
}

/** A JSON or YAML configuration file, checked key by key. */
export async function readConfigFile(file: string): Promise<Partial<TrainConfig>> {
  const raw = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError([`${file}: cannot read (${err.code ?? err.message})`]);
  });
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(raw) : YAML.parse(raw);
  } catch (err) {
    throw new ConfigError([`${file}: not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message}`]);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError([`${file}: must hold a mapping of options`]);
  const problems = configProblems(parsed as Record<string, unknown>, file);
  if (problems.length) throw new ConfigError(problems);
  const config = withoutAliases(parsed as Record<string, unknown>, file);
  // Paths in a config file are relative to the file, as users of such files expect.
  const base = path.dirname(path.resolve(file));
  for (const key of ['data', 'out'] as const) {
    if (typeof config[key] === 'string') config[key] = path.resolve(base, config[key]!);
  }
  return config;
}

/** Old names (CONFIG_ALIASES) renamed; both names at once is a problem. */
function withoutAliases(layer: Record<string, unknown>, source = ''): Partial<TrainConfig> {
  const renamed: Record<string, unknown> = { ...layer };
  for (const [old, current] of Object.entries(CONFIG_ALIASES)) {
    if (renamed[old] === undefined) {
      delete renamed[old];
      continue;
    }
    if (renamed[current] !== undefined && renamed[current] !== renamed[old]) {
      throw new ConfigError([`${source ? `${source}: ` : ''}${old}: the old name of ${current}; give one of them (got ${JSON.stringify(renamed[old])} and ${JSON.stringify(renamed[current])})`]);
    }
    renamed[current] = renamed[old];
    delete renamed[old];
  }
  return renamed as Partial<TrainConfig>;
}

/** Defaults, then the file, then explicit options; validated as a whole. */
export function resolveConfig(...layers: Array<Partial<TrainConfig> | undefined>): TrainConfig {
  const merged: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const layer of layers) {
    // Defined, not assigned: a key named __proto__ stays an (unknown) option instead of replacing the prototype.
    for (const [key, value] of Object.entries(withoutAliases(layer ?? {}))) {
      if (value !== undefined) Object.defineProperty(merged, key, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  const problems = configProblems(merged);
  for (const key of ['data', 'out'] as const) if (merged[key] === undefined) problems.push(`${key}: is required`);
  if (problems.length) throw new ConfigError(problems);
  return merged as unknown as TrainConfig;
}
