// The only module that loads the addon. Everything else imports typed functions from here, so the
// native boundary is described in one place.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { activeExperiments } from './experiments.js';
import { packageRoot } from './util/package-root.js';

/** A tensor crossing the boundary: row-major data plus its shape. */
export interface TensorData<T extends ArrayBufferView = Float32Array> {
  data: T;
  shape: number[];
}

export interface CudaDeviceInfo {
  index: number;
  name: string;
  capability: string;
  memoryBytes: number;
  bf16: boolean;
}

export interface RuntimeInfo {
  torchVersion: string;
  builtWithCuda: boolean;
  /** This build can capture the train step in a CUDA graph (a CUDA LibTorch with the CUDA headers). */
  cudaGraphs: boolean;
  /** This build has clip-native's own CUDA kernels (native/kernels/, compiled by nvcc). */
  cudaKernels: boolean;
  cudaAvailable: boolean;
  threads: number;
  cpuBf16: boolean;
  parallelInfo: string;
  devices: CudaDeviceInfo[];
}

/** The CUDA caching allocator's counts for one device; `available` is false without CUDA. */
export interface CudaMemory {
  available: boolean;
  allocatedBytes: number;
  reservedBytes: number;
  peakAllocatedBytes: number;
  peakReservedBytes: number;
}

export interface BuildInfo {
  buildPath: 'cmake-js' | 'node-gyp';
  builtAt: string;
  libtorch: { version: string; source: string; path: string; cuda: boolean };
}

type AnyTensor = TensorData<Float32Array | Int32Array | BigInt64Array | Uint8Array | Float64Array>;

/** A native CLIP model (native/binding/model_binding.cc). Configs cross as JSON text. */
export interface NativeModel {
  config(): string;
  device(): string;
  encodeImage(images: AnyTensor, options: { precision?: string }): Promise<TensorData<Float32Array>>;
  encodeText(tokens: AnyTensor, options: { precision?: string }): Promise<TensorData<Float32Array>>;
  forward(
    images: AnyTensor,
    tokens: AnyTensor,
    options: { precision?: string },
  ): Promise<{ logitsPerImage: TensorData<Float32Array>; logitsPerText: TensorData<Float32Array> }>;
  setTraining(on: boolean): void;
  isTraining(): boolean;
  /** Resolves once the weights are copied (the only part that holds the model); `save` writes that copy. */
  copyWeights(options: { naming: string }): Promise<{ save(path: string, options: { format: string; metadata: Record<string, string> }): Promise<void> }>;
  stateDict(): Promise<Array<{ name: string; tensor: TensorData<Float32Array | BigInt64Array> }>>;
  loadStateDict(entries: Array<{ name: string; tensor: AnyTensor }>, options: { strict: boolean }): Promise<NativeLoadResult['report']>;
  parameterCount(): number;
  logitScale(): number;
  dispose(): void;
}

export interface NativeLoadResult {
  model: NativeModel;
  format: string;
  configSource: string;
  hfNames: boolean;
  metadata: Record<string, string>;
  report: { missing: string[]; unexpected: string[]; mismatched: string[]; ignored: string[] };
}

/** What a native step did; values that need a device read-back are NaN/false unless `lossRead`. */
export interface NativeStepResult {
  loss: number;
  lossRead: boolean;
  /** The values read back come later, from takeRead(). */
  readDeferred: boolean;
  /** This micro-batch completed an optimizer step (applied, or skipped for non-finite values). */
  boundary: boolean;
  skipped: boolean;
  gradNorm: number;
  lossScale: number;
  /** Consecutive non-finite losses up to this step, where its loss was read. */
  nonFiniteRun: number;
}

export interface NativeTrainerStats {
  skippedSteps: number;
  lossSum: number;
  lossCount: number;
  nonFiniteRun: number;
}

/** Profiled time of one kernel (device 'cuda') or operator (device 'cpu', including its children), summed over its calls. */
export interface ProfileRow {
  name: string;
  device: 'cuda' | 'cpu';
  calls: number;
  totalUs: number;
}

export interface NativeTrainer {
  profile(images: AnyTensor, tokens: AnyTensor, labels: AnyTensor | null, options: { lr: number; steps: number; trace?: string }): Promise<ProfileRow[]>;
  step(images: AnyTensor, tokens: AnyTensor, labels: AnyTensor | null, options: { lr: number; readLoss: boolean; deferRead?: boolean }): Promise<NativeStepResult>;
  takeRead(): Promise<NativeStepResult>;
  dispose(): void;
  counters(): { optimizerSteps: number; microSteps: number; pendingMicroBatches: number };
  stats(): Promise<NativeTrainerStats>;
  flush(options: { lr: number; readLoss: boolean }): Promise<NativeStepResult>;
  resetEpochStats(): Promise<void>;
  info(): { trainableParameters: number; frozenParameters: number; cudaGraph: string; textLength: number; mostQueuedSteps: number; stepsQueuedLimit: number };
  saveCheckpoint(path: string, metadata: Record<string, string>): Promise<void>;
  loadCheckpoint(path: string): Promise<Record<string, string>>;
}

/** A batch of stats (native/io/file_batch.h): errno per file (0: ok), and the fields where it is 0. */
export interface NativeFileStats {
  errors: Int32Array;
  regular: Uint8Array;
  sizes: Float64Array;
  mtimeSec: Float64Array;
  mtimeNsec: Float64Array;
}

/** A batch of reads into the caller's memory: errno per file (-1: not the expected length), CRC-32 of each body, the headers one after another. */
export interface NativeFileReads {
  errors: Int32Array;
  crcs: Uint32Array;
  headers: Buffer;
}

/** A c10d process group (native/distributed/process_group.h): every call is a collective of all its ranks. */
export interface NativeGroup {
  rank(): number;
  worldSize(): number;
  backend(): string;
  allReduce(values: Float64Array, op: 'sum' | 'max'): Promise<Float64Array>;
  /** Every rank's values (the same length on all), in rank order. */
  allGather(values: Float64Array): Promise<Float64Array>;
  barrier(): Promise<void>;
}

export interface NativeGroupOptions {
  backend: 'gloo' | 'nccl';
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** This rank starts the rendezvous store (no launcher agent hosts it). */
  hostStore: boolean;
  timeoutMs: number;
  /** Where the collectives run: 'cpu' for gloo, the rank's 'cuda:N' for nccl. */
  device: string;
}

/** The part of a resized image to compute (a centre crop), in the resized image's coordinates. */
export interface ResampleWindow {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The trainer's options as the binding (native/binding/trainer_binding.cc) takes them: every key
 * required, none defaulted on the native side (a missing key is a TypeError naming it). The defaults
 * are src/train/trainer.ts's DEFAULT_TRAINER_OPTIONS.
 */
export interface NativeTrainerOptions {
  optimizer: 'adam' | 'adamw';
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  precision: 'fp32' | 'bf16' | 'fp16';
  batchNorm: 'frozen' | 'train';
  /** 0: no clipping. */
  gradClip: number;
  accumulate: number;
  accumulateMode: 'contrastive' | 'independent';
  gradCheckpointing: boolean;
  lockImage: boolean;
  lockText: boolean;
  /** Regular expressions over parameter names. */
  freeze: readonly string[];
  /** logit_scale clamped to [0, ln 100] after each step, as CLIP's training did. */
  clampLogitScale: boolean;
  cudaGraph: boolean;
  /** fp16's loss scaler: its first scale and the steps without overflow before it doubles. */
  initScale: number;
  growthInterval: number;
  /** null: one process. */
  group: NativeGroup | null;
  localLoss: boolean;
}

/** The raw addon surface. Kept private to this module; wrappers below add types and validation. */
interface Addon {
  runtimeInfo(): RuntimeInfo;
  setThreads(n: number): void;
  cudaMemory(device: number, resetPeak: boolean): CudaMemory;
  matmul(a: TensorData, b: TensorData): Promise<TensorData>;
  createModel(configJson: string, options: { seed: number; device: string; memoryFormat: string }): Promise<NativeModel>;
  /** One weight file, or the shards of one model (their tensors together). */
  loadModel(path: string | string[], options: { device: string; strict: boolean; config?: string; memoryFormat: string }): Promise<NativeLoadResult>;
  createTrainer(model: NativeModel, options: NativeTrainerOptions): Promise<NativeTrainer>;
  statFiles(paths: string[]): Promise<NativeFileStats>;
  readFilesInto(paths: string[], headerBytes: number, bodyBytes: number, dest: Uint8Array, slots: Int32Array): Promise<NativeFileReads>;
  joinBytes(parts: Uint8Array[]): Promise<Buffer>;
  copyBytesInto(parts: Uint8Array[], dest: Uint8Array, offsets: Float64Array): Promise<void>;
  resampleBicubic(src: Uint8Array, width: number, height: number, channels: number, outWidth: number, outHeight: number, window: ResampleWindow, alphaLast: boolean): Promise<Buffer>;
  createProcessGroup(options: NativeGroupOptions): Promise<NativeGroup>;
  builtBackends(): string[];
  missingBackendReason(backend: string): string;
}

export { packageRoot };

/** Where the addon is loaded from: `CLIP_NATIVE_ADDON` (to test another build) or build/Release. */
export function addonPath(): string {
  return process.env.CLIP_NATIVE_ADDON ?? path.join(packageRoot, 'build', 'Release', 'clip_native.node');
}

let addon: Addon | undefined;

export function native(): Addon {
  // Models and trainers read the switches when they are built, so a name set after the addon loaded
  // is checked too: an unknown one would otherwise switch nothing, silently.
  activeExperiments();
  if (addon) return addon;
  const file = addonPath();
  if (!existsSync(file)) {
    throw new Error(
      `The clip-native addon is not built (${file} is missing). Run \`npm run build:native\` in ${packageRoot}; ` +
        'it needs LibTorch: `pip install torch`, or LIBTORCH=/path/to/libtorch (see README "Finding LibTorch").',
    );
  }
  const require = createRequire(import.meta.url);
  try {
    addon = require(file) as Addon;
  } catch (err) {
    throw new Error(`Cannot load the clip-native addon ${file}: ${(err as Error).message}. Rebuild it with \`npm run build:native\`.`);
  }
  return addon;
}

/** How the loaded addon was built (written by scripts/build-native.mjs), if known. */
export function buildInfo(): BuildInfo | undefined {
  const file = path.join(path.dirname(addonPath()), 'build-info.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as BuildInfo;
}

export function runtimeInfo(): RuntimeInfo {
  return native().runtimeInfo();
}

/** Memory held by the CUDA caching allocator on `device`; `resetPeak` starts the peaks anew after reading. */
export function cudaMemory(device = 0, resetPeak = false): CudaMemory {
  return native().cudaMemory(device, resetPeak);
}

export function setThreads(n: number): void {
  native().setThreads(n);
}

/** Matrix product of two float32 tensors on the CPU: a small op that exercises the boundary. */
export function matmul(a: TensorData, b: TensorData): Promise<TensorData> {
  return native().matmul(a, b);
}

export function createNativeModel(configJson: string, options: { seed: number; device: string; memoryFormat: string }): Promise<NativeModel> {
  return native().createModel(configJson, options);
}

export function loadNativeModel(path: string | string[], options: { device: string; strict: boolean; config?: string; memoryFormat: string }): Promise<NativeLoadResult> {
  return native().loadModel(path, options);
}

export function createNativeTrainer(model: NativeModel, options: NativeTrainerOptions): Promise<NativeTrainer> {
  return native().createTrainer(model, options);
}

/** Joins (or, with hostStore, hosts) the rendezvous and creates the process group: blocks until every rank has joined or the timeout. */
export function createNativeGroup(options: NativeGroupOptions): Promise<NativeGroup> {
  return native().createProcessGroup(options);
}

/** The c10d backends this build can create ('gloo', 'nccl'), and why another cannot be. */
export function distributedBackends(): { built: string[]; missing: (backend: string) => string } {
  return { built: native().builtBackends(), missing: (backend) => native().missingBackendReason(backend) };
}

/** stat(2) of each path, as one request on the thread pool. */
export function statFiles(paths: string[]): Promise<NativeFileStats> {
  return native().statFiles(paths);
}

/**
 * Files of exactly headerBytes + bodyBytes, each header into the result and each body into `dest` at
 * slots[i] · bodyBytes, with the body's CRC-32: one request. `dest` must not be touched until it settles.
 */
export function readFilesInto(paths: string[], headerBytes: number, bodyBytes: number, dest: Uint8Array, slots: Int32Array): Promise<NativeFileReads> {
  return native().readFilesInto(paths, headerBytes, bodyBytes, dest, slots);
}

/** The parts one after another in a new buffer, allocated and copied on the thread pool. */
export function joinBytes(parts: Uint8Array[]): Promise<Buffer> {
  return native().joinBytes(parts);
}

/** Part i copied into dest at byte offsets[i], on the thread pool. `dest` must not be touched until it settles. */
export function copyBytesInto(parts: Uint8Array[], dest: Uint8Array, offsets: Float64Array): Promise<void> {
  return native().copyBytesInto(parts, dest, offsets);
}

/**
 * Pillow's `Image.resize((outWidth, outHeight), BICUBIC)` of interleaved 8-bit pixels, cropped to
 * `window`, on the thread pool (native/image/resample.h). With `alphaLast` the last channel is alpha
 * and the colour is resampled premultiplied, as Pillow does for RGBA and LA. `src` must not change until it settles.
 */
export function resampleBicubicNative(
  src: Uint8Array,
  size: { width: number; height: number; channels: number },
  out: { width: number; height: number },
  window: ResampleWindow,
  alphaLast: boolean,
): Promise<Buffer> {
  return native().resampleBicubic(src, size.width, size.height, size.channels, out.width, out.height, window, alphaLast);
}
