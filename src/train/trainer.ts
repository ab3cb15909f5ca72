// The low-level trainer: single native train steps on given tensors, with the learning rate taken
// from a schedule over optimizer steps. The training loop (loop.ts) drives it batch by batch.
import type { ClipModel, ImageData, Precision, TokenData } from '../model/model.js';
import {
  createNativeTrainer,
  type NativeStepResult,
  type NativeTrainer,
  type NativeTrainerOptions,
  type NativeTrainerStats,
  type ProfileRow,
} from '../native.js';
import type { ProcessGroup } from '../distributed/group.js';
import { DEFAULT_CONFIG } from './config.js';
import { learningRate, scheduleProblems, type Schedule } from './schedule.js';

export interface TrainerOptions {
  optimizer?: 'adam' | 'adamw';
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  schedule?: Schedule;
  precision?: Precision;
  /** ResNet BatchNorm: 'frozen' keeps running statistics (eval mode, the default), 'train' updates them. */
  batchNorm?: 'frozen' | 'train';
  /** Clip gradients to this global L2 norm (0 or absent: no clipping). */
  gradClip?: number;
  /** Micro-batches per optimizer step. */
  accumulate?: number;
  /**
   * How the micro-batches of one optimizer step combine. 'contrastive' (default; GradCache, open_clip's
   * accum_freq): one contrastive batch of accumulate × batch, every micro-batch's rows against every
   * other's, with the activation memory of one micro-batch (each runs twice: once without a graph for
   * its features, once with its share of the group loss's gradient). 'independent': the mean of each
   * micro-batch's own loss (each sees only its own negatives).
   */
  accumulateMode?: 'contrastive' | 'independent';
  /** Recompute each transformer block's (ResNet stage's) activations in backward instead of keeping them. */
  gradCheckpointing?: boolean;
  lockImage?: boolean;
  lockText?: boolean;
  /** Regular expressions over parameter names to freeze. */
  freeze?: string[];
  /**
   * On a CUDA device with accumulate 1 (default true; ignored elsewhere): after 3 eager steps with one
   * batch shape, record the whole step in a CUDA graph and replay it (one launch instead of thousands,
   * which matters most at small batches; docs/performance.md). Batches of another shape run
   * eagerly; a failed capture falls back to eager steps. See `cudaGraphStatus`.
   */
  cudaGraph?: boolean;
  /** logit_scale clamped to [0, ln 100] after each step, as CLIP's training did (default true). */
  clampLogitScale?: boolean;
  /** fp16 only: the loss scaler's first scale (default 65536, as PyTorch's GradScaler). */
  initScale?: number;
  /** fp16 only: steps without overflow before the loss scale doubles (default 2000, as PyTorch's GradScaler). */
  growthInterval?: number;
  /**
   * Data parallel: this process is one rank of the group. Weights start as rank 0's, gradients are
   * averaged over the ranks at each optimizer step, and the loss is each rank's rows against the whole
   * global batch's features (every rank must pass batches of the same size).
   */
  group?: ProcessGroup;
  /** With a group: each rank's loss over its own batch only, as one process per rank would compute it. */
  localLoss?: boolean;
}

export interface StepResult extends NativeStepResult {
  lr: number;
}

/** Every option but the group, resolved. */
export type ResolvedTrainerOptions = Required<Omit<TrainerOptions, 'group'>> & Pick<TrainerOptions, 'group'>;

/**
 * The blog's recipe, without its bugs: Adam(1e-6, (0.9, 0.98), 1e-6, wd 0.001), fp32 master weights.
 * The keys the training configuration shares are its defaults (DEFAULT_CONFIG), so the CLI, the config
 * file and this API start from the same values; the native binding defaults none.
 */
export const DEFAULT_TRAINER_OPTIONS: Readonly<ResolvedTrainerOptions> = {
  optimizer: DEFAULT_CONFIG.optimizer,
  lr: DEFAULT_CONFIG.lr,
  betas: DEFAULT_CONFIG.betas,
  eps: DEFAULT_CONFIG.eps,
  weightDecay: DEFAULT_CONFIG.weightDecay,
  // The configuration's schedule runs over epochs in the loop; a trainer on its own keeps its rate.
  schedule: { kind: 'constant' },
  // The configuration's 'auto' is resolved by the loop, which knows the device.
  precision: 'fp32',
  batchNorm: DEFAULT_CONFIG.batchNorm,
  gradClip: DEFAULT_CONFIG.gradClip,
  accumulate: DEFAULT_CONFIG.accumulate,
  accumulateMode: DEFAULT_CONFIG.accumulateMode,
  gradCheckpointing: DEFAULT_CONFIG.gradCheckpointing,
  lockImage: DEFAULT_CONFIG.lockImage,
  lockText: DEFAULT_CONFIG.lockText,
  freeze: DEFAULT_CONFIG.freeze,
  cudaGraph: DEFAULT_CONFIG.cudaGraph,
  clampLogitScale: true,
  initScale: 65536,
  growthInterval: 2000,
  localLoss: DEFAULT_CONFIG.localLossOnly,
};

/** `options` over the defaults; a key given as undefined keeps its default. */
export function resolveTrainerOptions(options: TrainerOptions): ResolvedTrainerOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as TrainerOptions;
  return { ...DEFAULT_TRAINER_OPTIONS, ...given };
}

/** The complete struct the binding takes (every key; lr and the schedule stay on this side). */
function nativeTrainerOptions(o: ResolvedTrainerOptions): NativeTrainerOptions {
  return {
    optimizer: o.optimizer,
    betas: o.betas,
    eps: o.eps,
    weightDecay: o.weightDecay,
    precision: o.precision,
    batchNorm: o.batchNorm,
    gradClip: o.gradClip,
    accumulate: o.accumulate,
    accumulateMode: o.accumulateMode,
    gradCheckpointing: o.gradCheckpointing,
    lockImage: o.lockImage,
    lockText: o.lockText,
    freeze: o.freeze,
    clampLogitScale: o.clampLogitScale,
    cudaGraph: o.cudaGraph,
    initScale: o.initScale,
    growthInterval: o.growthInterval,
    group: o.group?.native ?? null,
    localLoss: o.localLoss,
  };
}

/** Class indices per sample as the native call takes them (null: no labels). */
function labelTensor(labels: ArrayLike<number> | BigInt64Array | undefined) {
  if (labels === undefined) return null;
  const data = labels instanceof Int32Array || labels instanceof BigInt64Array ? labels : Int32Array.from(labels);
  return { data, shape: [data.length] };
}

export class Trainer {
  private constructor(
    readonly native: NativeTrainer,
    readonly model: ClipModel,
    readonly options: ResolvedTrainerOptions,
  ) {}

  static async create(model: ClipModel, options: TrainerOptions = {}): Promise<Trainer> {
    const resolved = resolveTrainerOptions(options);
    const problems = scheduleProblems(resolved.schedule);
    if (!(resolved.lr >= 0)) problems.push('lr: must be a non-negative number');
    if (problems.length) throw new Error(`invalid trainer options: ${problems.join('; ')}`);
    const native = await createNativeTrainer(model.native, nativeTrainerOptions(resolved));
    return new Trainer(native, model, resolved);
  }

  /**
   * Optimizer steps so far: the schedule's clock. A step skipped for non-finite values counts too, as
   * PyTorch's schedulers count a step the GradScaler skipped.
   */
  get optimizerSteps(): number {
    return this.native.counters().optimizerSteps;
  }

  /** Optimizer steps and micro-batches so far, and those gathered towards the next step (host counters: free to read). */
  get counters(): { optimizerSteps: number; microSteps: number; pendingMicroBatches: number } {
    return this.native.counters();
  }

  /**
   * Token positions the text tower has run so far: prompts are cut after the batch's last end-of-text
   * token (rounded up to 8, and never shorter than an earlier batch's), which changes no feature or
   * gradient: the tower is causal and pooled there. 0 before the first step.
   */
  get textLength(): number {
    return this.native.info().textLength;
  }

  /**
   * On a CUDA device, the most steps queued there at once and unfinished, and the limit: a step waits
   * for the oldest to finish rather than queue more (each holds its batch's pinned staging memory).
   * 0 elsewhere.
   */
  get queuedSteps(): { most: number; limit: number } {
    const info = this.native.info();
    return { most: info.mostQueuedSteps, limit: info.stepsQueuedLimit };
  }

  /** Where the CUDA graph of the step stands: 'off…', 'warming up', 'captured' or 'failed, running eagerly: …'. */
  get cudaGraphStatus(): string {
    return this.native.info().cudaGraph;
  }

  /**
   * Device-side statistics, in one read-back: skipped steps, the sum and count of finite losses since
   * the last resetEpochStats(), and how many of the latest losses in a row were not finite.
   */
  stats(): Promise<NativeTrainerStats> {
    return this.native.stats();
  }

  resetEpochStats(): Promise<void> {
    return this.native.resetEpochStats();
  }

  /**
   * With gradient accumulation, applies the gradients of an incomplete group (the last batches of an
   * epoch) as one optimizer step; does nothing when no micro-batch is pending.
   */
  async flush(options: { readLoss?: boolean } = {}): Promise<StepResult> {
    const lr = this.currentLr();
    return { ...(await this.native.flush({ lr, readLoss: options.readLoss ?? true })), lr };
  }

  /** The learning rate the next optimizer step will use. */
  currentLr(): number {
    return learningRate(this.options.schedule, this.options.lr, this.optimizerSteps);
  }

  /**
   * One forward/backward (and, at the accumulation boundary, one optimizer step) on a batch.
   * `labels` (class index per sample) turns on multi-positive targets. Resolves to the loss before
   * the update.
   */
  async step(images: ImageData, tokens: TokenData, labels?: ArrayLike<number> | BigInt64Array): Promise<number> {
    return (await this.stepWithInfo(images, tokens, labels)).loss;
  }

  /**
   * step(), resolving to what happened too: whether the step completed an optimizer step, whether it
   * was skipped, the lr, the gradient norm. With `readLoss: false` nothing is read back from the
   * device (no synchronisation: the GPU keeps its queue), and loss, skipped and gradNorm stay unknown.
   * With `deferRead` they are not waited for either (`readDeferred`): takeRead() gives them, oldest
   * first; taken after the next step is queued, the device has that step to run while the host waits.
   */
  async stepWithInfo(
    images: ImageData,
    tokens: TokenData,
    labels?: ArrayLike<number> | BigInt64Array,
    options: { readLoss?: boolean; deferRead?: boolean } = {},
  ): Promise<StepResult> {
    const lr = this.currentLr();
    const result = await this.native.step(images, tokens, labelTensor(labels), { lr, readLoss: options.readLoss ?? true, deferRead: options.deferRead ?? false });
    return { ...result, lr };
  }

  /** The values of the oldest step whose read was deferred (loss, skipped, gradNorm, lossScale, nonFiniteRun). */
  takeRead(): Promise<NativeStepResult> {
    return this.native.takeRead();
  }

  /** Frees the optimizer state and gradients now (the model stays); any later call throws. */
  dispose(): void {
    this.native.dispose();
  }

  /**
   * Runs `steps` train steps on one batch under LibTorch's profiler and resolves to where the time went:
   * GPU kernels on a CUDA device, operators on the CPU, longest total first. They are real steps (the
   * weights and counters move), all at the current learning rate. `trace` also writes a Chrome trace.
   */
  async profile(images: ImageData, tokens: TokenData, options: { steps?: number; trace?: string; labels?: ArrayLike<number> } = {}): Promise<ProfileRow[]> {
    return this.native.profile(images, tokens, labelTensor(options.labels), { lr: this.currentLr(), steps: options.steps ?? 3, trace: options.trace });
  }

  /** Writes weights, optimizer state, counters and RNG (plus `metadata` strings) atomically. */
  async saveCheckpoint(path: string, metadata: Record<string, string> = {}): Promise<void> {
    return this.native.saveCheckpoint(path, metadata);
  }

  /** Restores a checkpoint written by saveCheckpoint; resolves to its metadata. */
  async loadCheckpoint(path: string): Promise<Record<string, string>> {
    return this.native.loadCheckpoint(path);
  }
}

export function createTrainer(model: ClipModel, options: TrainerOptions = {}): Promise<Trainer> {
  return Trainer.create(model, options);
}
