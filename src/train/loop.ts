// The fine-tuning loop: epochs of native train steps over the loader, logging, evaluation,
// per-epoch weights, full checkpoints (also on abort) and exact resume.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { loadDataset } from '../data/datasets.js';
import type { Dataset } from '../data/dataset.js';
import { CropMemory, defaultCropMemoryBudget } from '../data/crop-memory.js';
import { createLoader } from '../data/loader.js';
import { modelPreprocessing } from '../data/preprocess.js';
import { evaluateModel, type EvaluateResult } from '../eval/zero-shot.js';
import { readSafetensorsMetadata } from '../io/safetensors-header.js';
import { architecture, canonicalModelName, type ClipConfig } from '../model/config.js';
import { createModel, loadModel, type ClipModel, type Precision } from '../model/model.js';
import { runtimeInfo } from '../native.js';
import { loadTokenizer, type ClipTokenizer } from '../text/tokenizer.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readConfigFile, resolveConfig, type TrainConfig } from './config.js';
import { MetricsLog } from './metrics-log.js';
import { BadData, formatKinds, SkippedLog, skippedPath, type SkipKind } from './bad-data.js';
import { BackgroundWrites } from './background-writes.js';
import { BatchTokenizer } from './batch-tokenizer.js';
import { nonFiniteTensors } from './finite-scan.js';
import { compatDifferences, compatError, compatRecord, COMPAT_METADATA_KEY, datasetHash, initialWeightsId, type CompatRecord } from './resume-compat.js';
import { checkDiskSpace, estimateWrites, freeBytes, lockRunDir, removeRun, runContents } from './run-dir.js';
import { checkpointPath, CONFIG_FILE, listCheckpoints, METRICS_FILE, pruneCheckpoints, resolveResume, runName, weightsPath, type CheckpointPosition } from './run-files.js';
import type { Schedule } from './schedule.js';
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
  eval?: EvaluateResult;
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
  evals: Array<{ epoch: number } & EvaluateResult>;
  out: string;
  /** Entries left out (unreadable images, malformed or duplicate list lines), each once in `file` (skipped.tsv). */
  skipped: { file: string; total: number; byKind: Partial<Record<SkipKind, number>> };
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
  bestTop1?: number;
}

function resolveDevice(device: string): string {
  if (device !== 'auto') return device;
  return runtimeInfo().cudaAvailable ? 'cuda' : 'cpu';
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
  const { config: configFile, signal, onLog, onBatch, onEpoch, onMessage, tokenizer: givenTokenizer, cacheDir, ...overrides } = options;
  const fromFile = configFile ? await readConfigFile(configFile) : undefined;
  const config = resolveConfig(fromFile, overrides);
  const out = path.resolve(config.out);
  const say = onMessage ?? (() => {});
  if (config.resume && config.overwrite && (config.resume === 'latest' || !path.relative(out, path.resolve(config.resume)).startsWith('..'))) {
    throw new Error(`--resume ${config.resume} and --overwrite: the checkpoint belongs to the run in ${out} that --overwrite would remove; choose one`);
  }
  await fs.mkdir(out, { recursive: true });
  // One run at a time in a directory: released however the run ends (at exit, if it never gets here).
  const lock = await lockRunDir(out, say);
  try {
    return await trainLocked(config, out, say, { signal, onLog, onBatch, onEpoch, tokenizer: givenTokenizer, cacheDir });
  } finally {
    await lock.release();
  }
}

async function trainLocked(
  config: TrainConfig,
  out: string,
  say: (message: string) => void,
  { signal, onLog, onBatch, onEpoch, tokenizer: givenTokenizer, cacheDir }: Pick<TrainOptions, 'signal' | 'onLog' | 'onBatch' | 'onEpoch' | 'tokenizer' | 'cacheDir'>,
): Promise<TrainResult> {
  const name = config.name ?? runName(config.model);
  // A new run never writes into an old one: their metrics, checkpoints and weight files would mix.
  const previous = await runContents(out, [name]);
  if (previous.entries.length > 0 && !config.resume && !config.overwrite) {
    throw new Error(
      `${out} already holds a training run (${previous.entries.join(', ')}). Continue it with --resume latest, ` +
        `start over with --overwrite (removes those files), or train into another --out.`,
    );
  }
  const device = resolveDevice(config.device);
  const precision = resolvePrecision(config.precision, device);

  const datasetOptions = { imagesDir: config.imagesDir, ext: config.ext, seed: config.seed, strict: config.strict };
  const trainSet = await loadDataset(config.data, { ...datasetOptions, split: config.trainSplit });
  for (const problem of trainSet.problems.slice(0, 20)) say(`dataset: ${problem.file}:${problem.line}: ${problem.message}`);
  const evalSet: Dataset | undefined =
    config.evalEvery > 0 && trainSet.kind === 'labels' ? await loadDataset(config.data, { ...datasetOptions, split: config.evalSplit }) : undefined;
  if (evalSet && (evalSet.split === undefined || config.evalSplit === config.trainSplit)) {
    const why = evalSet.split === undefined ? `${config.data} has no split column (a column split with train/test values holds rows out)` : `evalSplit and trainSplit are both ${config.trainSplit}`;
    say(`warning: zero-shot evaluation runs on the training samples: ${why}; its accuracy measures fit, not generalisation`);
  }
  const tokenizer = givenTokenizer ?? (await loadTokenizer());
  const resumeFile = config.resume ? await resolveResume(config.resume, out) : undefined;
  // Before any model is built: every skipped entry into skipped.tsv, and a split that is too
  // unreadable stops the run here (the first epoch's decode checks the rest).
  const badData = new BadData(await SkippedLog.open(skippedPath(out), { resume: resumeFile !== undefined }), { maxBadFraction: config.maxBadFraction, strict: config.strict, say });
  await badData.checkSplit(config.trainSplit, trainSet);
  if (evalSet && evalSet.split !== undefined && config.evalSplit !== config.trainSplit) await badData.checkSplit(config.evalSplit, evalSet);
  const model = await buildModel(config, device, resumeFile);
  const multiPositive = config.multiPositive === 'on' || (config.multiPositive === 'auto' && trainSet.kind === 'labels');

  const batchesPerEpoch = config.dropLast ? Math.floor(trainSet.samples.length / config.batchSize) : Math.ceil(trainSet.samples.length / config.batchSize);
  if (batchesPerEpoch === 0) throw new Error(`batchSize ${config.batchSize} is larger than the ${trainSet.samples.length} training samples with dropLast`);
  const stepsPerEpoch = Math.max(1, Math.ceil(batchesPerEpoch / config.accumulate));
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
    lockImage: config.lockImage,
    lockText: config.lockText,
    freeze: config.freeze,
    cudaGraph: config.cudaGraph,
  });

  // What the checkpoints' state depends on: a resume with other values is refused.
  const compat = compatRecord(config, {
    precision,
    architecture: model.config,
    initialWeights: await initialWeightsId(config, model.config),
    dataset: datasetHash(trainSet),
    worldSize: 1,
  });
  let startEpoch = 0;
  if (resumeFile) {
    const metadata = await readSafetensorsMetadata(resumeFile);
    const saved = metadata?.[COMPAT_METADATA_KEY];
    // An unreadable file (no metadata at all) is reported by the checkpoint load below.
    if (metadata && saved === undefined) {
      say(`warning: ${resumeFile} holds no record of the settings it was trained with (written before clip-native recorded them): model, data and hyperparameters could not be checked against this run's`);
    } else if (saved !== undefined) {
      const { differences, unchecked } = compatDifferences(JSON.parse(saved) as CompatRecord, compat);
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
  const free = await freeBytes(out);
  if (free !== undefined) checkDiskSpace(out, estimate, free + (overwriting ? previous.bytes : 0), config.savePt);
  if (overwriting) {
    // skipped.tsv was started over by this run already (above).
    const { removed, kept } = await removeRun(out, { ...previous, entries: previous.entries.filter((e) => e !== path.basename(skippedPath(out))) }, [config.model]);
    const keptNote = kept.length ? `; kept ${kept.join(', ')}: this run starts from it` : '';
    say(`--overwrite: removed (deleted, not moved aside) the previous run's files in ${out}: ${removed.join(', ')}${keptNote}`);
  }

  const resolved = { ...config, out, device, precision };
  await writeFileAtomic(path.join(out, CONFIG_FILE), JSON.stringify({ ...resolved, modelConfig: model.config }, null, 2) + '\n');
  const metrics = new MetricsLog(path.join(out, METRICS_FILE));
  const time = () => new Date().toISOString();

  let state: LoopState = { position: { epoch: 0, batch: 0 }, cursor: 0 };
  if (resumeFile) {
    const file = resumeFile;
    const metadata = await trainer.loadCheckpoint(file);
    if (!metadata.loop) throw new Error(`${file}: checkpoint has no loop state (was it written by clip-native train?)`);
    state = JSON.parse(metadata.loop) as LoopState;
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
  };

  // The epoch's running loss sum and count live in the trainer (on the device) and in its checkpoints.
  // Pruning never removes the checkpoint just written nor the one this run resumed from.
  const prune = async (newest: string) => {
    for (const removed of await pruneCheckpoints(out, config.keepLast, resumeFile ? [newest, resumeFile] : [newest])) say(`removed old checkpoint ${removed}`);
  };
  const writeCheckpoint = async (file: string, position: CheckpointPosition, cursor: number): Promise<void> => {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const loop: LoopState = { position, cursor, bestTop1: state.bestTop1 };
    await trainer.saveCheckpoint(file, { loop: JSON.stringify(loop), run: JSON.stringify(resolved), [COMPAT_METADATA_KEY]: JSON.stringify(compat) });
  };
  const saveCheckpoint = async (position: CheckpointPosition, cursor: number): Promise<string> => {
    const file = checkpointPath(out, position);
    await writeCheckpoint(file, position, cursor);
    result.checkpoints.push(file);
    await prune(file);
    return file;
  };

  const runEval = async (epoch: number): Promise<EvaluateResult | undefined> => {
    if (!evalSet) return undefined;
    const evaluation = await evaluateModel(model, evalSet, { templates: config.templates, tokenizer, precision, cacheDir, strict: config.strict });
    await metrics.append({ type: 'eval', epoch, split: config.evalSplit, time: time(), ...evaluation });
    result.evals.push({ epoch, ...evaluation });
    say(`eval after epoch ${epoch}: top-1 ${(evaluation.top1 * 100).toFixed(1)}%, top-5 ${(evaluation.top5 * 100).toFixed(1)}% on ${evaluation.n} ${config.evalSplit} images`);
    if (state.bestTop1 === undefined || evaluation.top1 > state.bestTop1) {
      state.bestTop1 = evaluation.top1;
      const best = path.join(out, `${name}_best.safetensors`);
      await model.save(best, { metadata: { epoch: String(epoch), top1: String(evaluation.top1) } });
      say(`best accuracy so far: weights saved to ${best}`);
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
      lastLoss = log.loss = read.loss;
      // Non-finite steps are skipped on the device (in every precision: the loss is taken before any
      // loss scaling); a run of them means the run has diverged.
      if (!diverged && !Number.isFinite(read.loss) && read.nonFiniteRun >= config.maxNonFiniteSteps) diverged = { log: { ...log }, run: read.nonFiniteRun };
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
    const bad = await nonFiniteTensors(unchecked);
    let checkpoint: string | undefined;
    if (bad.length === 0) {
      await fs.rename(unchecked, file);
      checkpoint = file;
      result.checkpoints.push(file);
      await prune(file);
    } else {
      await fs.rm(unchecked, { force: true });
    }
    const kept = checkpoint
      ? ` The last finite state is in ${checkpoint}.`
      : ` The state reached holds non-finite values too (${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''}) and was not written;` +
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
  try {
    for (let epoch = state.position.epoch; epoch < config.epochs; epoch++) {
      const resuming = epoch === state.position.epoch && state.position.batch > 0;
      const loader = createLoader(trainSet, {
        batchSize: config.batchSize,
        seed: config.seed,
        epoch,
        shuffle: true,
        dropLast: config.dropLast,
        ...modelPreprocessing(model.config),
        concurrency: config.workers === 'auto' ? undefined : config.workers,
        decodeThreads: config.decodeThreads === 'auto' ? undefined : config.decodeThreads,
        prefetch: config.prefetch,
        cache: config.cache,
        cacheDir: cacheDir,
        memory,
        strict: config.strict,
        // Bytes to the native side, normalised there (on the GPU when training there).
        pixels: 'uint8',
        startBatch: resuming ? state.position.batch : 0,
        startCursor: resuming ? state.cursor : undefined,
        onSkip: badData.onSkip(config.trainSplit, epoch + 1),
      });
      if (!resuming) await trainer.resetEpochStats();
      let batchesDone = resuming ? state.position.batch : 0;
      let cursor = resuming ? state.cursor : 0;
      const epochStart = performance.now();
      let windowStart = performance.now();
      let windowImages = 0;
      let step: StepResult | undefined;
      for await (const batch of loader) {
        const tokens = batchTokenizer.tokens(batch, epoch);
        const logged = (batchesDone + 1) % config.logEvery === 0;
        const readLoss = readsEveryStep || logged || batchesDone + 1 === loader.batchesPerEpoch || signal?.aborted === true;
        step = await trainer.stepWithInfo(batch.images, tokens, multiPositive ? batch.labelIndices : undefined, { readLoss, deferRead: true });
        batchesDone++;
        cursor = batch.cursor;
        windowImages += batch.samples.length;
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
        if (signal?.aborted && trainer.counters.pendingMicroBatches === 0) {
          await takeReads(0);
          const file = await saveCheckpoint({ epoch, batch: batchesDone }, cursor);
          say(`interrupted: checkpoint written to ${file}; continue with --resume latest`);
          result.interrupted = true;
          break;
        }
      }
      if (result.interrupted) break;
      await takeReads(0);
      if (diverged) {
        await stopDiverged(diverged, { epoch, batch: batchesDone }, cursor);
        break; // not reached: stopDiverged throws
      }

      const stats = loader.stats();
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
        // Only the copy of the weights waits for the model; its files are written while the next epoch trains.
        const copy = await model.copyWeights();
        await weightWrites.start(async () => {
          for (const file of weights) await copy.save(file, { metadata: { epoch: String(epoch + 1) } });
        });
      }
      result.weights.push(...weights);
      result.epochLosses.push(epochLoss);
      result.lastLoss = lastLoss;
      result.epochsCompleted = epoch + 1;
      const seconds = (performance.now() - epochStart) / 1000;
      await metrics.append({
        type: 'epoch',
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
      if (signal?.aborted) {
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
  await weightWrites.wait();
  result.optimizerSteps = trainer.optimizerSteps;
  result.skippedSteps = (await trainer.stats()).skippedSteps;
  result.cudaGraph = trainer.cudaGraphStatus;
  result.skipped = badData.summary();
  if (config.cudaGraph && device.startsWith('cuda')) say(`CUDA graph: ${result.cudaGraph}`);
  return result;
}
