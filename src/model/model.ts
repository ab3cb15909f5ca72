// The CLIP model API: createModel / loadModel and the ClipModel class over the native model.
import { existsSync } from 'node:fs';

import { createNativeModel, type NativeModel, type TensorData } from '../native.js';
import type { ProgressCallback } from '../util/download.js';
import { architecture, type ClipConfig } from './config.js';
import { exportModel, type ExportOptions, type ExportResult } from './export.js';
import { resolvePretrainedModel } from './resolve-name.js';
import { loadFromPath, type LoadedModelSource } from './load-model.js';
import type { WeightFormat, WeightsCopy, WeightsSource } from './weights-copy.js';

export type { WeightFormat, WeightsCopy };

export type Precision = 'fp32' | 'bf16' | 'fp16';

function formatOf(path: string): WeightFormat {
  return path.endsWith('.pt') || path.endsWith('.pth') ? 'pt' : 'safetensors';
}
export type TokenData = TensorData<Int32Array> | TensorData<BigInt64Array>;
/** Normalised float32 images [n, 3, R, R], or uint8 RGB pixels [n, R, R, 3] (the centre crops, normalised natively). */
export type ImageData = TensorData<Float32Array> | TensorData<Uint8Array>;

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  mismatched: string[];
  ignored: string[];
}

/** 'auto': channels-last ResNet convolutions on CUDA (faster with cuDNN), contiguous elsewhere. */
export type MemoryFormat = 'auto' | 'channels_last' | 'contiguous';

export interface CreateModelOptions {
  seed?: number;
  device?: string;
  memoryFormat?: MemoryFormat;
}

export interface LoadModelOptions {
  device?: string;
  memoryFormat?: MemoryFormat;
  /** Accept weights that do not cover the model exactly (default false: refuse, naming the keys). */
  partial?: boolean;
  /**
   * The architecture, in clip-native's terms: one more configuration source beside the file's metadata,
   * config.json, preprocessor_config.json, open_clip_config.json and the weights' shapes. Every source
   * must agree with it (a contradiction is an error naming both); an optional key left out means OpenAI's
   * value unless another source states it (docs/model-families.md).
   */
  config?: ClipConfig;
  /** Told what loading had to assume (e.g. the activation of weights nothing describes); default: process.emitWarning. */
  onWarning?: (message: string) => void;
  cacheDir?: string;
  progressCallback?: ProgressCallback;
}

export interface InferenceOptions {
  precision?: Precision;
}

export class ClipModel implements WeightsSource {
  /** How the weights were found, for models from loadModel(). */
  readonly source?: LoadedModelSource;

  constructor(
    readonly native: NativeModel,
    source?: Omit<LoadedModelSource, 'weights' | 'layout' | 'warnings'> & Partial<LoadedModelSource>,
  ) {
    this.source = source && { weights: [source.path], layout: 'file', warnings: [], ...source };
  }

  get config(): ClipConfig {
    return JSON.parse(this.native.config()) as ClipConfig;
  }

  get device(): string {
    return this.native.device();
  }

  get training(): boolean {
    return this.native.isTraining();
  }

  /** Image features [n, embed_dim] from normalised images [n, 3, R, R]. */
  async encodeImage(images: ImageData, options: InferenceOptions = {}): Promise<TensorData<Float32Array>> {
    return this.native.encodeImage(images, options);
  }

  /** Text features [n, embed_dim] from tokens [n, 77]. */
  async encodeText(tokens: TokenData, options: InferenceOptions = {}): Promise<TensorData<Float32Array>> {
    return this.native.encodeText(tokens, options);
  }

  async forward(
    images: ImageData,
    tokens: TokenData,
    options: InferenceOptions = {},
  ): Promise<{ logitsPerImage: TensorData<Float32Array>; logitsPerText: TensorData<Float32Array> }> {
    return this.native.forward(images, tokens, options);
  }

  train(on = true): this {
    this.native.setTraining(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Writes the weights atomically: safetensors (configuration in the metadata) or a `.pt` that `torch.load` reads. */
  async save(path: string, options: { format?: WeightFormat; naming?: 'openai' | 'hf'; metadata?: Record<string, string> } = {}): Promise<void> {
    const copy = await this.copyWeights({ naming: options.naming });
    return copy.save(path, { format: options.format, metadata: options.metadata });
  }

  /**
   * Writes a folder that another library loads as its own model: `{ to: 'hf' }` for Hugging Face
   * transformers (`CLIPModel` / `CLIPProcessor.from_pretrained(dir)`: config.json, model.safetensors,
   * preprocessor_config.json, tokenizer files from the BPE vocabulary; ViT models only), `{ to: 'open_clip' }`
   * for open_clip (`create_model_and_transforms('local-dir:' + dir)`: open_clip_config.json and
   * open_clip_model.safetensors). Atomic; refuses a non-empty existing folder unless `overwrite`.
   */
  async export(dir: string, options: ExportOptions): Promise<ExportResult> {
    return exportModel(this, dir, options);
  }

  /**
   * A copy of the weights as they are now, to write while the model goes on (training): resolves once
   * copied, which is the only part that waits for the model. Every save of it writes the same weights.
   */
  async copyWeights(options: { naming?: 'openai' | 'hf' } = {}): Promise<WeightsCopy> {
    const copy = await this.native.copyWeights({ naming: options.naming ?? 'openai' });
    return {
      save: async (path, saveOptions = {}) => copy.save(path, { format: saveOptions.format ?? formatOf(path), metadata: saveOptions.metadata ?? {} }),
    };
  }

  /** fp32 (and int64 BatchNorm counter) copies of every weight, in the reference's order and naming. */
  async stateDict(): Promise<Array<{ name: string; tensor: TensorData<Float32Array | BigInt64Array> }>> {
    return this.native.stateDict();
  }

  /** Copies the given weights in (converted to fp32); refuses a partial state dict unless `partial`. */
  async loadStateDict(entries: Array<{ name: string; tensor: TensorData<Float32Array | BigInt64Array> }>, options: { partial?: boolean } = {}): Promise<LoadReport> {
    return this.native.loadStateDict(entries, { strict: !options.partial });
  }

  /** The learned temperature parameter (logits = exp(logitScale) · cosine). */
  logitScale(): number {
    return this.native.logitScale();
  }

  parameterCount(): number {
    return this.native.parameterCount();
  }

  /** Frees the native memory now rather than at garbage collection. */
  dispose(): void {
    this.native.dispose();
  }
}

function resolveConfig(nameOrConfig: string | ClipConfig): ClipConfig {
  return typeof nameOrConfig === 'string' ? architecture(nameOrConfig) : nameOrConfig;
}

/** A randomly initialised model (the reference's initialisation scheme), seeded. */
export async function createModel(nameOrConfig: string | ClipConfig, options: CreateModelOptions = {}): Promise<ClipModel> {
  const config = resolveConfig(nameOrConfig);
  const native = await createNativeModel(JSON.stringify(config), {
    seed: options.seed ?? 0,
    device: options.device ?? 'cpu',
    memoryFormat: options.memoryFormat ?? 'auto',
  });
  return new ClipModel(native);
}

/**
 * A model from a weight file (OpenAI's TorchScript `.pt`, a `torch.save`d state dict, safetensors in
 * OpenAI or Hugging Face naming), a model folder (Hugging Face `save_pretrained`, sharded or not; an
 * open_clip checkpoint folder; a Hugging Face hub cache entry `models--org--name`) or a released model
 * name (resolved in the model cache). Every configuration source found is read and merged (see
 * LoadModelOptions.config); what had to be assumed is in `source.warnings`.
 */
export async function loadModel(source: string, options: LoadModelOptions = {}): Promise<ClipModel> {
  // A name (OpenAI's, open_clip's ARCH:TAG, hf-hub:org/name) may fix the architecture, which shapes cannot tell.
  const resolved = existsSync(source) ? undefined : await resolvePretrainedModel(source, options);
  const loaded = await loadFromPath(resolved?.path ?? source, {
    device: options.device ?? 'cpu',
    strict: !options.partial,
    memoryFormat: options.memoryFormat ?? 'auto',
    config: options.config,
    named: resolved?.config ? { config: resolved.config, label: `the name ${source} (${resolved.source})` } : undefined,
    openaiRelease: resolved && !resolved.config && resolved.source.startsWith("OpenAI's ") ? resolved.source.slice("OpenAI's ".length) : undefined,
    onWarning: options.onWarning,
  });
  return new ClipModel(loaded.model, loaded.source);
}
