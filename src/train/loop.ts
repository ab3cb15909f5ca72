// The fine-tuning loop: epochs of native train steps over the loader, logging, evaluation,
// per-epoch weights, full checkpoints (also on abort) and exact resume.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { createHash } from 'node:crypto';

import { captionEpoch, imageGroups } from '../data/captions.js';
import { loadDataset } from '../data/load-dataset.js';
import type { Dataset } from '../data/dataset.js';
import { CropMemory, defaultCropMemoryBudget } from '../data/crop-memory.js';
import { createLoader, type Batch } from '../data/loader.js';
import { modelPreprocessing } from '../data/preprocess.js';
import { agreedBatches } from '../distributed/agreed-batches.js';
import { evaluateSharded } from '../distributed/eval.js';
import { launchFromEnv, ProcessGroup } from '../distributed/group.js';
import { checkWorld, type WorldCheck } from '../distributed/reshard.js';
import { digestNumbers, fingerprint, RunGroup } from '../distributed/run-group.js';
import { batchesPerEpoch as batchesPerRank, samplesLeftOut, shardCursor } from '../distributed/shard.js';
import { evaluateRetrievalModel, isRetrieval, type RetrievalEvaluation } from '../eval/retrieval.js';
import type { EvaluateResult } from '../eval/zero-shot.js';
import { readSafetensorsMetadata } from '../io/safetensors-header.js';
import { architecture, canonicalModelName, type ClipConfig } from '../model/config.js';
import { createModel, loadModel, type ClipModel, type Precision } from '../model/model.js';
import { runtimeInfo } from '../native.js';
import { loadTokenizer, type ClipTokenizer } from '../text/tokenizer.js';
import { writeFileAtomic } from '../util/atomic.js';
import { isBetter, metricValue, resolveBestMetric } from './best-metric.js';
import { readConfigFile, resolveConfig, type TrainConfig } from './config.js';
import { MetricsLog } from './metrics-log.js';
import { BadData, formatKinds, SkippedLog, skippedPath, type SkipKind } from './bad-data.js';
import { BackgroundWrites } from './background-writes.js';
import { BatchTokenizer } from './batch-tokenizer.js';
import { nonFiniteTensors } from './finite-scan.js';
import { compatDifferences, compatError, compatRecord, COMPAT_METADATA_KEY, datasetHash, initialWeightsId, type CompatRecord } from './resume-compat.js';
import { checkDiskSpace, estimateWrites, freeBytes, lockRunDir, removeRun, runContents } from './run-dir.js';
import { checkpointPath, CONFIG_FILE, listCheckpoints, METRICS_FILE, pruneCheckpoints, resolveResume, RETRIEVAL_WORST_FILE, runName, weightsPath, type CheckpointPosition } from './run-files.js';
import type { Schedule } from './schedule.js';
import { explainOutOfMemory, findBatchSize, takePeakMemory, type ResolvedConfig } from './memory.js';
import { createTrainer, type StepResult, type Trainer } from './trainer.js';

export interface StepLog {
  epoch: number;
  /** Optimizer steps so far. */
  step: number;
  /** Batch index within the epoch (1-based: batches done). */
  batch: number;
  batches: number;
  loss: number;
  lr: number;
  imagesPerSecond: number;
}

export interface EpochLog {
  epoch: number;
  epochs: number;
  /** Mean of the epoch's batch losses (not divided by the sample count, as the blog did). */
  loss: number;
  batches: number;
  seconds: number;
  skippedImages: number;
  /** This epoch's weight files (none between `weightsEvery` epochs): written in the background,
   * complete once the next epoch ends (or train() resolves). */
  weights: string[];
  checkpoint?: string;
  eval?: EvaluateResult | RetrievalEvaluation;
}

export interface TrainOptions extends Partial<TrainConfig> {
  /** A JSON or YAML file of options; explicit options override it. */
  config?: string;
  /** @deprecated The old name of `maxNonFiniteSteps`. */
  maxNonFinite?: number;
  signal?: AbortSignal;
  onLog?: (log: StepLog) => void;
  /** After every batch (progress bars). */
  onBatch?: (log: StepLog) => void;
  onEpoch?: (log: EpochLog) => void;
  /** Messages worth showing a person (resume, skipped images, evaluation). */
  onMessage?: (message: string) => void;
  tokenizer?: ClipTokenizer;
  /** Where preprocessed crops are cached (default: the cache directory). */
  cacheDir?: string;
  /**
   * Data parallel (docs/distributed.md). Absent: the environment decides: under torchrun or
   * `clip-native train --nproc` (WORLD_SIZE > 1) this process is one rank and joins the group described
   * there (device 'cuda' or 'auto' meaning cuda:LOCAL_RANK), waiting at most `distTimeout` seconds.
   * A joined ProcessGroup: this process is its rank. false: one process, whatever the environment says.
   * Every rank calls train() with the same options; rank 0 alone writes files, and the callbacks are
   * called on every rank with the same (global) values.
   */
  group?: ProcessGroup | false;
}

export interface TrainResult {
  config: TrainConfig;
  epochsCompleted: number;
  optimizerSteps: number;
  skippedSteps: number;
  /** Where the CUDA graph of the step stood at the end ('off' unless cudaGraph was asked for). */
  cudaGraph: string;
  interrupted: boolean;
  lastLoss: number | undefined;
  epochLosses: number[];
  weights: string[];
  checkpoints: string[];
  evals: Array<{ epoch: number } & (EvaluateResult | RetrievalEvaluation)>;
  out: string;
  /** Entries left out (unreadable images, malformed or duplicate list lines), each once in `file` (skipped.tsv). */
  skipped: { file: string; total: number; byKind: Partial<Record<SkipKind, number>> };
  /** This process's rank and the number of ranks (0 and 1 for one process); rank 0 wrote the files. */
  rank: number;
  worldSize: number;
}

/**
 * Thrown by train() when the training loss stayed non-finite for `maxNonFiniteSteps` steps in a row.
 * `checkpoint`: the checkpoint of the last finite state, written then; when that state held non-finite
 * values too, the last checkpoint written before (undefined if none was).
 */
export class DivergedError extends Error {
  constructor(
    message: string,
    readonly checkpoint: string | undefined,
    readonly steps: number,
  ) {
    super(message);
    this.name = 'DivergedError';
  }
}

/** Checkpoint metadata written by this loop beside the native state. */
interface LoopState {
  position: CheckpointPosition;
  /** Loader position (`Batch.cursor`) after the last batch done in the current epoch. */
  cursor: number;
  /** Data parallel: each rank's `cursor` in its part of the order (they differ only when ranks skipped images). */
  cursors?: number[];
  /** Written before best-metric existed: the best zero-shot top-1. */
  bestTop1?: number;
  /** The best value so far of the measure that chooses `<name>_best.safetensors`. */
  best?: { metric: string; value: number };
}

/** 'auto' and 'cuda' are the rank's own GPU under a launcher: cuda:LOCAL_RANK. */
function resolveDevice(device: string, localRank?: number): string {
  const resolved = device !== 'auto' ? device : runtimeInfo().cudaAvailable ? 'cuda' : 'cpu';
  return resolved === 'cuda' && localRank !== undefined ? `cuda:${localRank}` : resolved;
}

/** The options every rank must share: all but the device, the loader's and caches' knobs, paths and the timeout. */
function sharedOptions(config: TrainConfig): Partial<TrainConfig> {
  const { device: _device, workers: _w, decodeThreads: _d, prefetch: _p, cache: _c, memoryCacheMiB: _m, data: _data, imagesDir: _i, out: _o, resume: _r, distTimeout: _t, ...shared } = config;
  return shared;
}

function resolvePrecision(precision: TrainConfig['precision'], device: string): Precision {
  if (precision !== 'auto') return precision;
  if (!device.startsWith('cuda')) return 'fp32';
  const index = Number(device.split(':')[1] ?? 0);
  return runtimeInfo().devices.find((d) => d.index === index)?.bf16 ? 'bf16' : 'fp16';
}

async function buildModel(config: TrainConfig, device: string, resumeFile: string | undefined): Promise<ClipModel> {
  if (resumeFile && config.init === 'pretrained') {
    // The checkpoint holds every weight: build its architecture instead of loading (or downloading)
    // the pretrained file it started from, unless the named model says it is another architecture.
    const saved = (await readSafetensorsMetadata(resumeFile))?.config;
    if (!saved) throw new Error(`${resumeFile} is not a clip-native training checkpoint (no model configuration in its metadata)`);
    const arch = JSON.parse(saved) as ClipConfig;
    const named = canonicalModelName(config.model) ? architecture(config.model) : undefined;
    if (named && JSON.stringify(named) !== JSON.stringify({ ...arch, vision_patch_size: arch.vision_patch_size ?? null })) {
      throw new Error(`${resumeFile} was made for another architecture than ${config.model}: checkpoint ${saved}`);
    }
    return createModel(arch, { seed: config.seed, device });
  }
  if (config.init === 'random') {
    const arch: ClipConfig = config.model.endsWith('.json')
      ? (JSON.parse(await fs.readFile(config.model, 'utf8').catch((err: Error) => {
          throw new Error(`model: cannot read ${config.model}: ${err.message}`);
        })) as ClipConfig)
      : architecture(config.model);
    return createModel(arch, { seed: config.seed, device });
  }
  if (config.model.endsWith('.json')) throw new Error(`model: ${config.model} holds a configuration, not weights; add --init random to train it from scratch`);
  return loadModel(config.model, { device });
}

function schedule(config: TrainConfig, stepsPerEpoch: number): Schedule {
  switch (config.schedule) {
    case 'constant':
      return { kind: 'constant' };
    case 'step':
      return { kind: 'step', every: config.stepEvery * stepsPerEpoch, gamma: config.gamma };
    case 'cosine':
      return { kind: 'cosine', warmup: config.warmup, total: config.epochs * stepsPerEpoch };
  }
}

/** Fine-tune a CLIP model. Resolves when the run ends, is interrupted (checkpoint written) or fails. */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { config: configFile, signal, onLog, onBatch, onEpoch, onMessage, tokenizer: givenTokenizer, cacheDir, group: givenGroup, ...overrides } = options;
  const fromFile = configFile ? await readConfigFile(configFile) : undefined;
  const config = resolveConfig(fromFile, overrides);
  const out = path.resolve(config.out);
  const sayAll = onMessage ?? (() => {});
  if (config.resume && config.overwrite && (config.resume === 'latest' || !path.relative(out, path.resolve(config.resume)).startsWith('..'))) {
    throw new Error(`--resume ${config.resume} and --overwrite: the checkpoint belongs to the run in ${out} that --overwrite would remove; choose one`);
  }
  // Data parallel: join the group (every rank, before any model is built).
  const launch = givenGroup === undefined ? launchFromEnv() : givenGroup ? givenGroup.launch : undefined;
  let group = givenGroup || undefined;
  if (!group && launch && launch.worldSize > 1) {
    group = await ProcessGroup.join(launch, resolveDevice(config.device, launch.localRank), { timeoutMs: config.distTimeout * 1000 });
  }
  const rg = new RunGroup(group);
  // Rank 0 talks to the user; another rank's own messages (its skipped images) say which rank it is.
  const say = rg.isMain ? sayAll : () => {};
  const sayRank = (message: string) => sayAll(`${rg.prefix}${message}`);
  await fs.mkdir(out, { recursive: true });
  // One run at a time in a directory: released however the run ends (at exit, if it never gets here).
  // Rank 0's: the other ranks write nothing there.
  const lock = await rg.together('to lock the run directory', () => lockRunDir(out, say), { mainOnly: true });
  try {
    return await trainLocked(config, out, say, { signal, onLog, onBatch, onEpoch, tokenizer: givenTokenizer, cacheDir, rg, sayRank, localRank: launch?.localRank });
  } finally {
    await lock?.release();
  }
}

async function trainLocked(
  requested: TrainConfig,
  out: string,
  say: (message: string) => void,
  {
    signal,
    onLog,
    onBatch,
    onEpoch,
    tokenizer: givenTokenizer,
    cacheDir,
    rg,
    sayRank,
    localRank,
  }: Pick<TrainOptions, 'signal' | 'onLog' | 'onBatch' | 'onEpoch' | 'tokenizer' | 'cacheDir'> & { rg: RunGroup; sayRank: (message: string) => void; localRank: number | undefined },
): Promise<TrainResult> {
  // batchSize 'auto' becomes a number once the model is built; nothing reads it before.
  let config = requested as ResolvedConfig;
  const name = config.name ?? runName(config.model);
  // A new run never writes into an old one: their metrics, checkpoints and weight files would mix.
  // Rank 0's directory: its refusal reaches every rank.
  const previous = (await rg.together(
    'checking the run directory',
    async () => {
      const found = await runContents(out, [name]);
      if (found.entries.length > 0 && !config.resume && !config.overwrite) {
        throw new Error(
          `${out} already holds a training run (${found.entries.join(', ')}). Continue it with --resume latest, ` +
            `start over with --overwrite (removes those files), or train into another --out.`,
        );
      }
      return found;
    },
    { mainOnly: true },
  )) ?? { entries: [], bytes: 0 };
  const device = resolveDevice(config.device, localRank);
  const precision = resolvePrecision(config.precision, device);

  const datasetOptions = { imagesDir: config.imagesDir, ext: config.ext, seed: config.seed, strict: config.strict };
  const trainSet = await loadDataset(config.data, { ...datasetOptions, split: config.trainSplit });
  for (const problem of trainSet.problems.slice(0, 20)) say(`dataset: ${problem.file}:${problem.line}: ${problem.message}`);
  const bestMetric = resolveBestMetric(config.bestMetric, trainSet.kind);
  const evalSet: Dataset | undefined = config.evalEvery > 0 ? await loadDataset(config.data, { ...datasetOptions, split: config.evalSplit }) : undefined;
  if (evalSet && (evalSet.split === undefined || config.evalSplit === config.trainSplit)) {
    const why = evalSet.split === undefined ? `${config.data} has no split column (a column split with train/test values holds rows out)` : `evalSplit and trainSplit are both ${config.trainSplit}`;
    const what = trainSet.kind === 'labels' ? ['zero-shot evaluation', 'accuracy measures'] : ['retrieval evaluation', 'metrics measure'];
    say(`warning: ${what[0]} runs on the training samples: ${why}; its ${what[1]} fit, not generalisation`);
  }
  const tokenizer = givenTokenizer ?? (await loadTokenizer({ fixText: config.fixText }));
  const resumeFile = config.resume ? await resolveResume(config.resume, out) : undefined;
  // Before any model is built: every skipped entry into skipped.tsv, and a split that is too
  // unreadable stops the run here (the first epoch's decode checks the rest).
  const skippedLog = rg.isMain ? await SkippedLog.open(skippedPath(out), { resume: resumeFile !== undefined }) : SkippedLog.unwritten(skippedPath(out));
  const badData = new BadData(skippedLog, { maxBadFraction: config.maxBadFraction, strict: config.strict, say });
  await badData.checkSplit(config.trainSplit, trainSet);
  if (evalSet && evalSet.split !== undefined && config.evalSplit !== config.trainSplit) await badData.checkSplit(config.evalSplit, evalSet);
  const model = await buildModel(config, device, resumeFile);
  if (requested.batchSize === 'auto') config = { ...config, batchSize: await findBatchSize(requested, model, { device, precision, distributed: rg.distributed, samples: trainSet.samples.length, say }) };
  const multiPositive = config.multiPositive === 'on' || (config.multiPositive === 'auto' && (trainSet.kind === 'labels' || config.captions === 'all'));
  // Caption data: the captions of one image are positives of each other (their image's index as a
  // label) when an epoch holds several of them; labelled data: the class.
  const positives = (batch: Batch): Int32Array | undefined =>
    !multiPositive ? undefined : trainSet.kind === 'labels' ? batch.labelIndices : config.captions === 'all' ? imageGroups(batch.samples) : undefined;
  // With several captions per image and --captions one, an epoch has one sample per image.
  const epochSamples = captionEpoch(trainSet, config.captions, config.seed, 0).samples.length;

  // batchSize is per rank: global batch k is the single process's batch k of batchSize × worldSize.
  const batchesPerEpoch = batchesPerRank(epochSamples, config.batchSize, rg.worldSize, config.dropLast);
  if (batchesPerEpoch === 0) {
    const global = rg.distributed ? ` (× ${rg.worldSize} ranks = ${config.batchSize * rg.worldSize})` : '';
    throw new Error(`batchSize ${config.batchSize}${global} is larger than the ${epochSamples} training samples with dropLast`);
  }
  const stepsPerEpoch = Math.max(1, Math.ceil(batchesPerEpoch / config.accumulate));
  if (rg.distributed) {
    const leftOut = samplesLeftOut(epochSamples, config.batchSize, rg.worldSize, config.dropLast);
    say(
      `data parallel: ${rg.worldSize} ranks (${rg.group!.native.backend()}), --batch-size ${config.batchSize} per rank, global batch ${config.batchSize * rg.worldSize}; ` +
        `${batchesPerEpoch} steps per epoch${leftOut > 0 ? `, ${leftOut} sample(s) of each epoch's last global batch left out (not a multiple of ${rg.worldSize} ranks)` : ''}`,
    );
  }
  // Every rank trains the same list with the same options, from the same checkpoint: refused here,
  // naming the rank, before the first collective of the trainer (rank 0's weights to all).
  await rg.checkSame([
    { name: 'the training data', value: [trainSet.samples.length, ...digestNumbers(datasetHash(trainSet))], hint: `its list of ${config.trainSplit} samples (${trainSet.samples.length} here) has another sha256` },
    { name: 'the options', value: fingerprint({ ...sharedOptions(config), architecture: model.config, precision }), hint: 'an option other than device, workers, caches and paths' },
    { name: 'the checkpoint to resume', value: fingerprint(resumeFile ? path.basename(resumeFile) : null), hint: `here ${resumeFile ?? 'none'}` },
  ]);
  const trainer: Trainer = await createTrainer(model, {
    optimizer: config.optimizer,
    lr: config.lr,
    betas: config.betas,
    eps: config.eps,
    weightDecay: config.weightDecay,
    schedule: schedule(config, stepsPerEpoch),
    precision,
    batchNorm: config.batchNorm,
    gradClip: config.gradClip,
    accumulate: config.accumulate,
    accumulateMode: config.accumulateMode,
    gradCheckpointing: config.gradCheckpointing,
    lockImage: config.lockImage,
    lockText: config.lockText,
    freeze: config.freeze,
    cudaGraph: config.cudaGraph,
    group: rg.group,
    localLoss: config.localLossOnly,
  });

  // What the checkpoints' state depends on: a resume with other values is refused.
  const compat = compatRecord(config, {
    precision,
    architecture: model.config,
    initialWeights: await initialWeightsId(config, model.config),
    dataset: datasetHash(trainSet),
    worldSize: rg.worldSize,
  });
  let startEpoch = 0;
  let resharded: WorldCheck['resharded'];
  if (resumeFile) {
    const metadata = await readSafetensorsMetadata(resumeFile);
    const saved = metadata?.[COMPAT_METADATA_KEY];
    // An unreadable file (no metadata at all) is reported by the checkpoint load below.
    if (metadata && saved === undefined) {
      say(`warning: ${resumeFile} holds no record of the settings it was trained with (written before clip-native recorded them): model, data and hyperparameters could not be checked against this run's`);
    } else if (saved !== undefined) {
      // Another world size: the same global batch re-sliced with --allow-reshard, else refused.
      const world = checkWorld(resumeFile, JSON.parse(saved) as CompatRecord, compat, config.allowReshard);
      resharded = world.resharded;
      const { differences, unchecked } = compatDifferences(world.record, compat);
      if (differences.length > 0) throw compatError(resumeFile, differences);
      if (unchecked.length > 0) say(`resume from ${resumeFile}: ${unchecked.join(', ')} could not be compared (${config.model} is not there any more)`);
    }
    if (metadata?.loop) startEpoch = (JSON.parse(metadata.loop) as LoopState).position.epoch;
    const all = (await listCheckpoints(out)).map((c) => path.resolve(c.file));
    const at = all.indexOf(resumeFile);
    if (at >= 0 && at < all.length - 1) {
      say(`warning: ${all.length - 1 - at} checkpoint(s) in ${out} are newer than ${resumeFile}, from the continuation this resume replaces (the newest: ${all.at(-1)}); those this run reaches are overwritten`);
    }
  }

  // What the run will write, against the space free there (a removed old run's files count as free).
  const estimate = estimateWrites({
    startEpoch,
    epochs: config.epochs,
    weightsEvery: config.weightsEvery,
    checkpointEvery: config.checkpointEvery,
    keepLast: config.keepLast,
    savePt: config.savePt,
    evalEvery: config.evalEvery,
    weightBytes: model.parameterCount() * 4,
  });
  const overwriting = config.overwrite && !config.resume && previous.entries.length > 0;
  const resolved = { ...config, out, device, precision };
  // Rank 0's, while the other ranks wait (and stop with its error should it fail).
  await rg.together(
    'preparing the run directory',
    async () => {
      const free = await freeBytes(out);
      if (free !== undefined) checkDiskSpace(out, estimate, free + (overwriting ? previous.bytes : 0), config.savePt);
      if (overwriting) {
        // skipped.tsv was started over by this run already (above).
        const { removed, kept } = await removeRun(out, { ...previous, entries: previous.entries.filter((e) => e !== path.basename(skippedPath(out))) }, [config.model]);
        const keptNote = kept.length ? `; kept ${kept.join(', ')}: this run starts from it` : '';
        say(`--overwrite: removed (deleted, not moved aside) the previous run's files in ${out}: ${removed.join(', ')}${keptNote}`);
      }
      const distributed = rg.distributed ? { distributed: { worldSize: rg.worldSize, backend: rg.group!.native.backend(), globalBatchSize: config.batchSize * rg.worldSize } } : {};
      await writeFileAtomic(path.join(out, CONFIG_FILE), JSON.stringify({ ...resolved, ...distributed, modelConfig: model.config }, null, 2) + '\n');
    },
    { mainOnly: true },
  );
  const metrics: Pick<MetricsLog, 'append'> = rg.isMain ? new MetricsLog(path.join(out, METRICS_FILE)) : { append: async () => {} };
  const time = () => new Date().toISOString();

  let state: LoopState = { position: { epoch: 0, batch: 0 }, cursor: 0 };
  if (resumeFile) {
    const file = resumeFile;
    const metadata = await trainer.loadCheckpoint(file);
    if (!metadata.loop) throw new Error(`${file}: checkpoint has no loop state (was it written by clip-native train?)`);
    state = JSON.parse(metadata.loop) as LoopState;
    if (resharded) {
      const skippedBefore = state.cursors ? state.cursors.some((c) => c !== shardCursor(state.position.batch, resharded!.batchSize)) : state.cursor !== shardCursor(state.position.batch, resharded.batchSize);
      say(
        `--allow-reshard: the checkpoint was trained on ${resharded.worldSize} rank(s) × batch ${resharded.batchSize}; this run continues its global batches on ${rg.worldSize} × ${config.batchSize}` +
          (skippedBefore ? ' (images were skipped before it: this epoch goes on from its global batch as if none had been)' : ''),
      );
    }
    say(`resumed from ${file}: epoch ${state.position.epoch + 1}, batch ${state.position.batch}, optimizer step ${trainer.optimizerSteps}`);
    await metrics.append({ type: 'resume', epoch: state.position.epoch, batch: state.position.batch, checkpoint: file, time: time() });
  }

  const result: TrainResult = {
    config: resolved,
    epochsCompleted: state.position.epoch,
    optimizerSteps: trainer.optimizerSteps,
    skippedSteps: 0,
    cudaGraph: 'off',
    interrupted: false,
    lastLoss: undefined,
    epochLosses: [],
    weights: [],
    checkpoints: [],
    evals: [],
    out,
    skipped: badData.summary(),
    rank: rg.rank,
    worldSize: rg.worldSize,
  };

  // The epoch's running loss sum and count live in the trainer (on the device) and in its checkpoints.
  // Pruning never removes the checkpoint just written nor the one this run resumed from.
  const prune = async (newest: string) => {
    if (!rg.isMain) return;
    for (const removed of await pruneCheckpoints(out, config.keepLast, resumeFile ? [newest, resumeFile] : [newest])) say(`removed old checkpoint ${removed}`);
  };
  // Rank 0 writes it, with every rank's loader position; the others wait.
  const writeCheckpoint = async (file: string, position: CheckpointPosition, cursor: number): Promise<void> => {
    const cursors = rg.distributed ? (await rg.gather([cursor])).map((c) => c[0]!) : undefined;
    await rg.together(
      'writing a checkpoint',
      async () => {
        await fs.mkdir(path.dirname(file), { recursive: true });
        const loop: LoopState = { position, cursor, ...(cursors ? { cursors } : {}), bestTop1: state.bestTop1, best: state.best };
        await trainer.saveCheckpoint(file, { loop: JSON.stringify(loop), run: JSON.stringify(resolved), [COMPAT_METADATA_KEY]: JSON.stringify(compat) });
      },
      { mainOnly: true },
    );
  };
  const saveCheckpoint = async (position: CheckpointPosition, cursor: number): Promise<string> => {
    const file = checkpointPath(out, position);
    await writeCheckpoint(file, position, cursor);
    result.checkpoints.push(file);
    await prune(file);
    return file;
  };

  const runEval = async (epoch: number): Promise<EvaluateResult | RetrievalEvaluation | undefined> => {
    if (!evalSet) return undefined;
    const options = { templates: config.templates, tokenizer, precision, cacheDir, strict: config.strict };
    // Zero-shot: sharded over the ranks, its counts summed. Retrieval: every rank scores the whole split
    // (its ranks need every feature), so every rank has the whole result either way.
    const evaluation = evalSet.kind === 'captions' ? await evaluateRetrievalModel(model, evalSet, options) : await evaluateSharded(rg, model, evalSet, options);
    result.evals.push({ epoch, ...evaluation });
    if (isRetrieval(evaluation)) {
      const { worst, ...numbers } = evaluation;
      await metrics.append({ type: 'eval', epoch, split: config.evalSplit, time: time(), ...numbers });
      if (rg.isMain) await writeFileAtomic(path.join(out, RETRIEVAL_WORST_FILE), JSON.stringify({ epoch, split: config.evalSplit, ...worst }, null, 1) + '\n');
      const { imageToText: i2t, textToImage: t2i, loss } = evaluation.retrieval;
      const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
      say(`eval after epoch ${epoch}: R@1 image→text ${pct(i2t.r1)}, text→image ${pct(t2i.r1)}; R@5 ${pct(i2t.r5)}, ${pct(t2i.r5)}; loss ${loss.toFixed(4)} on ${evaluation.images} ${config.evalSplit} images, ${evaluation.texts} captions`);
    } else {
      await metrics.append({ type: 'eval', epoch, split: config.evalSplit, time: time(), ...evaluation });
      say(`eval after epoch ${epoch}: top-1 ${(evaluation.top1 * 100).toFixed(1)}%, top-5 ${(evaluation.top5 * 100).toFixed(1)}% on ${evaluation.n} ${config.evalSplit} images`);
    }
    const value = metricValue(bestMetric, evaluation);
    const best = state.best?.metric === bestMetric ? state.best.value : bestMetric === 'top1' ? state.bestTop1 : undefined;
    if (isBetter(bestMetric, value, best)) {
      state.best = { metric: bestMetric, value };
      if (bestMetric === 'top1') state.bestTop1 = value;
      const file = path.join(out, `${name}_best.safetensors`);
      await rg.together('writing the best weights', () => model.save(file, { metadata: { epoch: String(epoch), [bestMetric]: String(value) } }), { mainOnly: true });
      say(`best ${bestMetric} so far (${value.toFixed(4)}): weights saved to ${file}`);
    }
    return evaluation;
  };

  if (state.position.epoch === 0 && state.position.batch === 0) await runEval(0);

  const batchTokenizer = new BatchTokenizer(tokenizer, config.templates, model.config.context_length);
  // Reading a loss back waits for the GPU to drain its queue, so on CUDA only the steps that are
  // logged (or end an epoch, or are interrupted) read theirs; on the CPU it costs nothing. Each read is
  // taken one step late (Trainer.takeRead): the next step is queued first, so the device has it to run
  // while the host waits, and the step's log line is written then.
  const readsEveryStep = !device.startsWith('cuda');
  let lastLoss = Number.NaN;
  const unread: Array<{ log: StepLog; logged: boolean }> = [];
  /** Set once the loss has been non-finite for maxNonFiniteSteps steps in a row: the run stops. */
  let diverged: { log: StepLog; run: number } | undefined;
  /** Takes the reads of all but the newest `keep` steps that deferred theirs: losses, log lines, and the divergence check. */
  const takeReads = async (keep: number): Promise<void> => {
    while (unread.length > keep) {
      const { log, logged } = unread.shift()!;
      const read = await trainer.takeRead();
      // A micro-batch inside a contrastive accumulation group has no loss of its own: the group's
      // comes with its last micro-batch; until then the line shows the latest.
      if (read.lossRead) lastLoss = read.loss;
      log.loss = lastLoss;
      // Non-finite steps are skipped on the device (in every precision: the loss is taken before any
      // loss scaling); a run of them means the run has diverged.
      if (!diverged && read.lossRead && !Number.isFinite(read.loss) && read.nonFiniteRun >= config.maxNonFiniteSteps) diverged = { log: { ...log }, run: read.nonFiniteRun };
      if (logged) {
        onLog?.(log);
        await metrics.append({ type: 'step', ...log, time: time() });
      }
    }
  };
  /**
   * Ends a diverged run. Its non-finite steps were skipped on the device, so the model and optimizer
   * hold the last state reached with finite losses: it is written as a checkpoint, kept only if every
   * value in it is finite (a finite loss can still have brought non-finite gradients), and the run
   * fails with a DivergedError that names it.
   */
  const stopDiverged = async ({ log, run }: { log: StepLog; run: number }, position: CheckpointPosition, cursor: number): Promise<never> => {
    // A checkpoint holds no half-gathered gradients: a group under way is applied (skipped on the
    // device when one of its losses was not finite).
    if (trainer.counters.pendingMicroBatches > 0) await trainer.flush({ readLoss: false });
    const before = result.checkpoints.at(-1);
    const file = checkpointPath(out, position);
    const unchecked = path.join(path.dirname(file), `.unchecked-${path.basename(file)}`);
    await writeCheckpoint(unchecked, position, cursor);
    // Rank 0 wrote it and checks it; the others learn the outcome (the same weights on every rank).
    const bad = rg.isMain ? await nonFiniteTensors(unchecked) : [];
    const [badOnMain] = await rg.sum([bad.length]);
    let checkpoint: string | undefined;
    if (badOnMain === 0) {
      if (rg.isMain) await fs.rename(unchecked, file);
      checkpoint = file;
      result.checkpoints.push(file);
      await prune(file);
    } else if (rg.isMain) {
      await fs.rm(unchecked, { force: true });
    }
    const kept = checkpoint
      ? ` The last finite state is in ${checkpoint}.`
      : ` The state reached holds non-finite values too (${bad.length ? `${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''}` : 'rank 0 names them'}) and was not written;` +
        (before ? ` the last good checkpoint is ${before}.` : ' no checkpoint was written before.');
    throw new DivergedError(
      `the loss was not finite for ${run} consecutive steps (last: epoch ${log.epoch}, batch ${log.batch}, optimizer step ${log.step}); ` +
        `those steps were not applied, and training stopped.${kept} Lower the learning rate (now ${log.lr}) or try --grad-clip 1.0 ` +
        `(in a new run: a resume keeps the checkpoint's settings; --max-nonfinite-steps sets how many such steps stop a run).`,
      checkpoint ?? before,
      run,
    );
  };
  const weightWrites = new BackgroundWrites();
  // One for the whole run: the epochs after the first take the crops it holds from memory.
  const memoryBudget = config.memoryCacheMiB === 'auto' ? defaultCropMemoryBudget() : Math.floor(config.memoryCacheMiB * 2 ** 20);
  const memory = memoryBudget > 0 ? new CropMemory(memoryBudget) : undefined;
  let memoryReported = false;
  /** Data parallel: set when the ranks agreed to stop at a batch boundary (an interrupt any rank saw). */
  let stopAgreed = false;
  /** CLIP_NATIVE_RANK_REPORT: the samples this rank trained, per epoch (a launch's check: docs/distributed.md). */
  const reportDir = process.env.CLIP_NATIVE_RANK_REPORT;
  const trainedSamples: Array<{ epoch: number; samples: string[] }> = [];
  try {
    for (let epoch = state.position.epoch; epoch < config.epochs; epoch++) {
      const resuming = epoch === state.position.epoch && state.position.batch > 0;
      const loader = createLoader(captionEpoch(trainSet, config.captions, config.seed, epoch), {
        batchSize: config.batchSize,
        seed: config.seed,
        epoch,
        shuffle: true,
        dropLast: config.dropLast,
        ...modelPreprocessing(model.config),
        concurrency: config.workers === 'auto' ? undefined : config.workers,
        decodeThreads: config.decodeThreads === 'auto' ? undefined : config.decodeThreads,
        resample: config.resample,
        prefetch: config.prefetch,
        cache: config.cache,
        cacheDir: cacheDir,
        memory,
        strict: config.strict,
        // Bytes to the native side, normalised there (on the GPU when training there).
        pixels: 'uint8',
        augment: config.augment,
        // Data parallel: this rank's slice of each global batch.
        shard: rg.distributed ? { rank: rg.rank, worldSize: rg.worldSize } : undefined,
        startBatch: resuming ? state.position.batch : 0,
        startCursor: resuming ? (resharded ? shardCursor(state.position.batch, config.batchSize) : (state.cursors?.[rg.rank] ?? state.cursor)) : undefined,
        onSkip: badData.onSkip(config.trainSplit, epoch + 1),
      });
      if (reportDir) trainedSamples.push({ epoch: epoch + 1, samples: [] });
      if (!resuming) await trainer.resetEpochStats();
      let batchesDone = resuming ? state.position.batch : 0;
      let cursor = resuming ? state.cursor : 0;
      const epochStart = performance.now();
      takePeakMemory(device); // the peak from here on is this epoch's
      let windowStart = performance.now();
      let windowImages = 0;
      let step: StepResult | undefined;
      // Data parallel: the ranks agree before each batch on its size and on whether to stop there (an
      // interrupt on any rank stops all at the same step boundary).
      const batches = rg.distributed
        ? agreedBatches(
            rg,
            loader,
            () => signal?.aborted === true && trainer.counters.pendingMicroBatches === 0,
            () => (stopAgreed = true),
          )
        : loader;
      for await (const batch of batches) {
        const tokens = batchTokenizer.tokens(batch, epoch);
        const logged = (batchesDone + 1) % config.logEvery === 0;
        // Which steps read their loss decides where a divergence is seen: the same on every rank.
        const readLoss = readsEveryStep || logged || batchesDone + 1 === loader.batchesPerEpoch || (!rg.distributed && signal?.aborted === true);
        step = await trainer.stepWithInfo(batch.images, tokens, positives(batch), { readLoss, deferRead: true }).catch((error: unknown) => {
          throw explainOutOfMemory(error, { ...config, model: config.model, device, precision });
        });
        batchesDone++;
        cursor = batch.cursor;
        windowImages += batch.samples.length * rg.worldSize;
        trainedSamples.at(-1)?.samples.push(...batch.samples.map((s) => path.relative(trainSet.root, s.image)));
        const seconds = (performance.now() - windowStart) / 1000;
        const log: StepLog = {
          epoch: epoch + 1,
          step: trainer.optimizerSteps,
          batch: batchesDone,
          batches: loader.batchesPerEpoch,
          loss: lastLoss,
          lr: step.lr,
          imagesPerSecond: seconds > 0 ? windowImages / seconds : 0,
        };
        // The loss shown is the latest read; this step's comes with its log line, a step later.
        onBatch?.(log);
        if (step.readDeferred) unread.push({ log: { ...log }, logged });
        if (logged) {
          windowStart = performance.now();
          windowImages = 0;
        }
        await takeReads(step.readDeferred ? 1 : 0);
        if (diverged) break;
        // Interrupt between optimizer steps only: the gradients of a half-gathered group are not saved.
        // (Data parallel: where the ranks agreed, before the next batch, below.)
        if (!rg.distributed && signal?.aborted && trainer.counters.pendingMicroBatches === 0) {
          await takeReads(0);
          const file = await saveCheckpoint({ epoch, batch: batchesDone }, cursor);
          say(`interrupted: checkpoint written to ${file}; continue with --resume latest`);
          result.interrupted = true;
          break;
        }
      }
      if (stopAgreed) {
        await takeReads(0);
        const file = await saveCheckpoint({ epoch, batch: batchesDone }, cursor);
        say(`interrupted: every rank stopped after batch ${batchesDone} of epoch ${epoch + 1}; checkpoint written to ${file}; continue with --resume latest`);
        result.interrupted = true;
      }
      if (result.interrupted) break;
      await takeReads(0);
      if (diverged) {
        await stopDiverged(diverged, { epoch, batch: batchesDone }, cursor);
        break; // not reached: stopDiverged throws
      }

      const stats = loader.stats();
      if (rg.distributed && !rg.isMain && stats.skipped > 0) {
        // Rank 0 writes skipped.tsv: this rank's own are named here.
        const names = stats.skippedImages.slice(0, 10).map((s) => `${s.message} (${s.kind})`);
        sayRank(`epoch ${epoch + 1}: skipped ${stats.skipped} unreadable image(s) of its part of the data: ${names.join('; ')}${stats.skipped > names.length ? '; …' : ''}`);
      }
      if (rg.distributed) {
        // The epoch's counts over all ranks.
        const [skipped, decoded, cacheHits, memoryHits] = await rg.sum([stats.skipped, stats.decoded, stats.cacheHits, stats.memoryHits]);
        Object.assign(stats, { skipped, decoded, cacheHits, memoryHits });
      }
      if (stats.skipped > 0) say(`epoch ${epoch + 1}: skipped ${stats.skipped} unreadable image(s) (${formatKinds(stats.skippedByKind)}), each listed in ${badData.log.file}`);
      if (batchesDone === 0) throw new Error(`epoch ${epoch + 1}: no image of the ${config.trainSplit} split could be read; see ${badData.log.file}`);
      // The epoch's last batches may not fill an accumulation group: they still make one step.
      await trainer.flush({ readLoss: false });
      const { lossSum, lossCount } = await trainer.stats();
      const epochLoss = lossCount > 0 ? lossSum / lossCount : Number.NaN;
      // Before any checkpoint of this epoch boundary, so a resume starts the next epoch's sum at zero.
      await trainer.resetEpochStats();
      const last = epoch + 1 === config.epochs;
      const weights: string[] = [];
      if (last || (config.weightsEvery > 0 && (epoch + 1) % config.weightsEvery === 0)) {
        weights.push(weightsPath(out, name, epoch + 1, 'safetensors'));
        if (config.savePt) weights.push(weightsPath(out, name, epoch + 1, 'pt'));
        // Only the copy of the weights waits for the model; its files are written while the next epoch
        // trains (rank 0's, with no collective: the ranks' weights are the same).
        if (rg.isMain) {
          const copy = await model.copyWeights();
          await weightWrites.start(async () => {
            for (const file of weights) await copy.save(file, { metadata: { epoch: String(epoch + 1) } });
          });
        }
      }
      result.weights.push(...weights);
      result.epochLosses.push(epochLoss);
      result.lastLoss = lastLoss;
      result.epochsCompleted = epoch + 1;
      const seconds = (performance.now() - epochStart) / 1000;
      const peakMemory = takePeakMemory(device);
      if (peakMemory) say(`epoch ${epoch + 1}: peak device memory ${peakMemory.allocatedGiB} GiB allocated, ${peakMemory.reservedGiB} GiB reserved`);
      await metrics.append({
        type: 'epoch',
        ...(peakMemory ? { peakMemoryGiB: peakMemory } : {}),
        epoch: epoch + 1,
        loss: epochLoss,
        steps: trainer.optimizerSteps,
        batches: batchesDone,
        seconds,
        skipped: stats.skipped,
        // Where the epoch's images came from: decoded, the crop cache on disk, or memory.
        images: { decoded: stats.decoded, diskCache: stats.cacheHits, memory: stats.memoryHits },
        lr: trainer.currentLr(),
        time: time(),
      });
      const evaluation = config.evalEvery > 0 && (epoch + 1) % config.evalEvery === 0 ? await runEval(epoch + 1) : undefined;
      let checkpoint: string | undefined;
      if (last || (config.checkpointEvery > 0 && (epoch + 1) % config.checkpointEvery === 0)) {
        checkpoint = await saveCheckpoint({ epoch: epoch + 1, batch: 0 }, 0);
      }
      onEpoch?.({ epoch: epoch + 1, epochs: config.epochs, loss: epochLoss, batches: batchesDone, seconds, skippedImages: stats.skipped, weights, checkpoint, eval: evaluation });
      if (memory && !memoryReported && memory.size > 0) {
        memoryReported = true;
        const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
        const others = config.cache ? 'come from the disk cache' : 'are decoded again each epoch';
        const full = memory.refused > 0 ? `; the limit is reached, the others ${others} (--memory-cache raises it)` : '';
        say(`${memory.size} preprocessed images kept in memory for the next epochs (${mib(memory.bytes)} of ${mib(memory.budgetBytes)} MiB allowed)${full}`);
      }
      if (await rg.anyStop(signal?.aborted === true)) {
        if (!checkpoint) checkpoint = await saveCheckpoint({ epoch: epoch + 1, batch: 0 }, 0);
        say(`interrupted: checkpoint written to ${checkpoint}; continue with --resume latest`);
        result.interrupted = true;
        break;
      }
    }
  } catch (err) {
    await weightWrites.wait().catch(() => {}); // the run's own error is the one to report
    throw err;
  }
  // The other ranks end once rank 0's files are there.
  await rg.together('writing the weights', () => weightWrites.wait(), { mainOnly: true });
  result.optimizerSteps = trainer.optimizerSteps;
  result.skippedSteps = (await trainer.stats()).skippedSteps;
  result.cudaGraph = trainer.cudaGraphStatus;
  result.skipped = badData.summary();
  if (config.cudaGraph && device.startsWith('cuda')) say(`CUDA graph: ${result.cudaGraph}`);
  if (reportDir) await writeRankReport(reportDir, rg, model, result, trainedSamples);
  return result;
}

/**
 * CLIP_NATIVE_RANK_REPORT=<dir>: each rank writes rank-<r>.json at the end of its run, with the sha256
 * of its weights and the samples (relative to the dataset) it trained in each epoch, to check a launch:
 * equal weights on all ranks, disjoint shards covering the global batches.
 */
async function writeRankReport(dir: string, rg: RunGroup, model: ClipModel, result: TrainResult, epochs: Array<{ epoch: number; samples: string[] }>): Promise<void> {
  const hash = createHash('sha256');
  for (const { name, tensor } of await model.native.stateDict()) {
    hash.update(name).update(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
  }
  await fs.mkdir(dir, { recursive: true });
  const report = { rank: rg.rank, worldSize: rg.worldSize, optimizerSteps: result.optimizerSteps, interrupted: result.interrupted, weightsSha256: hash.digest('hex'), epochs };
  await writeFileAtomic(path.join(dir, `rank-${rg.rank}.json`), JSON.stringify(report) + '\n');
}
