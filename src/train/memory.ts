// Device memory as a user sees it: a device out-of-memory failure named with what would fit, the
// peak per epoch on CUDA, and the largest batch that fits (`--batch-size auto`).
import type { ClipModel, Precision } from '../model/model.js';
import { cudaMemory } from '../native.js';
import type { TrainConfig } from './config.js';
import { createTrainer, type TrainerOptions } from './trainer.js';

/** A train step ran out of device memory; the message names the batch, the model and what would fit. */
export class OutOfMemoryError extends Error {
  constructor(message: string, cause: Error) {
    super(message, { cause });
    this.name = 'OutOfMemoryError';
  }
}

/** What was running when memory ran out. */
export interface MemoryContext {
  model: string;
  batchSize: number;
  device: string;
  precision: Precision;
  accumulate: number;
  gradCheckpointing: boolean;
  lockImage: boolean;
  lockText: boolean;
}

/** LibTorch's out-of-memory errors (CUDA's caching allocator, and the CPU's) as they reach JS. */
export function isOutOfMemory(error: unknown): error is Error {
  return error instanceof Error && /out of memory|DefaultCPUAllocator: can't allocate/i.test(error.message);
}

/** The options that would fit in less memory, the cheapest change to what is learnt first. */
export function memorySuggestions(c: MemoryContext): string[] {
  const out: string[] = [];
  if (!c.gradCheckpointing) out.push('--grad-checkpointing (recomputes activations in backward: the same updates, more time)');
  if (c.batchSize > 1) {
    const half = Math.floor(c.batchSize / 2);
    const contrastive = c.batchSize * c.accumulate;
    out.push(`--batch-size ${half} --accumulate ${c.accumulate * 2} (the same contrastive batch of ${contrastive}, half the activations)`);
    out.push(`--batch-size ${half} (fewer negatives per step)`);
  }
  if (c.precision === 'fp32' && c.device.startsWith('cuda')) out.push('--precision bf16 (half-size activations; fp32 master weights stay)');
  if (!c.lockText && !c.lockImage) out.push('--lock-text or --lock-image (a frozen tower keeps no gradients or optimizer moments)');
  out.push('--batch-size auto (finds the largest batch that fits)');
  return out;
}

/** `error` as an OutOfMemoryError naming the batch, the model and what would fit; other errors as they are. */
export function explainOutOfMemory(error: unknown, context: MemoryContext): unknown {
  if (!isOutOfMemory(error)) return error;
  const lines = memorySuggestions(context).map((s) => `  ${s}`);
  return new OutOfMemoryError(
    `out of memory on ${context.device}: a train step of ${context.model} at --batch-size ${context.batchSize} (${context.precision}` +
      `${context.accumulate > 1 ? `, --accumulate ${context.accumulate}` : ''}${context.gradCheckpointing ? ', --grad-checkpointing' : ''}) does not fit.\n` +
      `Options that need less memory:\n${lines.join('\n')}\n(${error.message.split('\n')[0]})`,
    error,
  );
}

/** The CUDA device index of a device string ('cuda', 'cuda:1'), or undefined for the CPU. */
export function cudaIndex(device: string): number | undefined {
  if (!device.startsWith('cuda')) return undefined;
  return Number(device.split(':')[1] ?? 0);
}

/** The peak device memory since the last reset (CUDA only), in GiB, and a new peak from now. */
export function takePeakMemory(device: string): { allocatedGiB: number; reservedGiB: number } | undefined {
  const index = cudaIndex(device);
  if (index === undefined) return undefined;
  const memory = cudaMemory(index, true);
  if (!memory.available) return undefined;
  const gib = (bytes: number) => Math.round((bytes / 2 ** 30) * 100) / 100;
  return { allocatedGiB: gib(memory.peakAllocatedBytes), reservedGiB: gib(memory.peakReservedBytes) };
}

/**
 * The largest power of two up to `max` for which `fits` holds, trying 1, 2, 4, … and stopping at the
 * first that does not (memory grows with the batch). Throws when not even one fits.
 */
export async function largestPowerOfTwo(fits: (n: number) => Promise<boolean>, max: number): Promise<number> {
  let best = 0;
  for (let n = 1; n <= max; n *= 2) {
    if (!(await fits(n))) break;
    best = n;
  }
  if (best === 0) throw new Error('not even a batch of 1 image fits in memory');
  return best;
}

/**
 * `--batch-size auto`: the largest power of two (up to `max`) whose train step runs on `model` — a real
 * step, forward and backward of both towers on random pixels and full-length prompts, the worst case
 * the text trimming can meet. Each try trains with a learning rate of 0 on a trainer of its own, so
 * the model's weights come back as they were: they are restored from a copy all the same, in case a
 * non-finite gradient reached them.
 */
export async function autoBatchSize(model: ClipModel, options: TrainerOptions, max: number): Promise<number> {
  const saved = await model.stateDict();
  const r = model.config.image_resolution;
  const context = model.config.context_length;
  const fits = async (n: number): Promise<boolean> => {
    const images = { data: new Uint8Array(n * r * r * 3).map((_, i) => (i * 2654435761) >>> 24), shape: [n, r, r, 3] };
    const tokens = { data: new Int32Array(n * context).fill(1000), shape: [n, context] };
    for (let i = 0; i < n; i++) tokens.data[(i + 1) * context - 1] = 49407;
    const trainer = await createTrainer(model, { ...options, lr: 0, accumulate: 1, cudaGraph: false, batchNorm: 'frozen', group: undefined });
    try {
      await trainer.step(images, tokens);
      return true;
    } catch (error) {
      if (isOutOfMemory(error)) return false;
      throw error;
    } finally {
      trainer.dispose();
    }
  };
  try {
    return await largestPowerOfTwo(fits, max);
  } finally {
    await model.loadStateDict(saved);
  }
}

/** The configuration once `batchSize: 'auto'` is a number. */
export type ResolvedConfig = Omit<TrainConfig, 'batchSize'> & { batchSize: number };

/**
 * `--batch-size auto` for a run: CUDA only (a CPU swaps rather than fails at a batch size), one process
 * (ranks would each find their own), at most the training samples (and 4096). The search runs eager
 * steps; a CUDA graph needs a memory pool of its own and falls back to eager steps where it does not fit.
 */
export async function findBatchSize(
  config: TrainConfig,
  model: ClipModel,
  run: { device: string; precision: Precision; distributed: boolean; samples: number; say: (message: string) => void },
): Promise<number> {
  if (run.distributed) throw new Error("batchSize: 'auto' is not supported with several ranks yet: give each rank's --batch-size as a number");
  // The test hook stands in for a device that runs out (native/train/trainer.cc).
  if (cudaIndex(run.device) === undefined && !process.env.CLIP_NATIVE_EMULATE_OOM_ABOVE_BATCH) {
    throw new Error(`batchSize: 'auto' needs a CUDA device (the device is ${run.device}: a CPU swaps rather than fails at some batch size); give --batch-size as a number`);
  }
  const options: TrainerOptions = {
    optimizer: config.optimizer,
    precision: run.precision,
    lockImage: config.lockImage,
    lockText: config.lockText,
    freeze: config.freeze,
    gradCheckpointing: config.gradCheckpointing,
  };
  const max = Math.min(4096, run.samples);
  const found = await autoBatchSize(model, options, max);
  run.say(`--batch-size auto: ${found}, the largest power of two up to ${max} whose train step fits on ${run.device} (checked with real steps)`);
  return found;
}
