// Loading a model from a file or folder: find the weights (weight-location.ts), read every
// configuration source beside them (config-sources.ts), merge them (a contradiction is an error), and
// build the native model from the result. The weights' shapes are the last source: the native loader
// checks a stated configuration against them, and infers one from them when nothing states it — then
// saying which values it had to assume.
import path from 'node:path';
import { promises as fs } from 'node:fs';

import { loadNativeModel, type NativeLoadResult, type NativeModel } from '../native.js';
import { sha256File } from '../util/download.js';
import { MODEL_NAMES, type ClipConfig } from './config.js';
import {
  ARCHITECTURE_FIELDS,
  configJsonSource,
  hfPreprocessorSource,
  mergeSources,
  metadataSource,
  openaiSource,
  openClipSource,
  ourTermsSource,
  readJsonFile,
  referenceVisionHeads,
  sameConfig,
  shapesSource,
  withOpenAIDefaults,
  type ConfigField,
  type ConfigSource,
  type MergedConfig,
} from './config-sources.js';
import { pretrainedFile } from './pretrained.js';
import { locateWeights, type WeightLocation } from './weight-location.js';

export interface LoadedModelSource {
  /** The file or folder loaded (for a released name, its file in the cache). */
  path: string;
  /** The weight files read: one, or the shards of one model. */
  weights: string[];
  /** How the weights were found in a folder ('file' for a single file). */
  layout: string;
  format: string;
  /** Where the configuration came from: 'metadata', 'given', 'inferred…', or the sources' files. */
  configSource: string;
  hfNames: boolean;
  report: NativeLoadResult['report'];
  metadata: Record<string, string>;
  /** What loading had to assume (the activation or head counts nothing states), and how to state it. */
  warnings: string[];
}

export interface LoadFromPathOptions {
  device: string;
  memoryFormat: string;
  strict: boolean;
  config?: ClipConfig;
  /** The architecture a model name fixes (open_clip's ARCH:TAG, resolve-name.ts), and how to name it. */
  named?: { config: ClipConfig; label: string };
  /** The weights are OpenAI's release of this name (resolved in the model cache). */
  openaiRelease?: string;
  onWarning?: (message: string) => void;
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then((s) => s.isFile(), () => false);
}

/** Every configuration source for these weights but their shapes, most direct first. */
export async function readConfigSources(
  location: WeightLocation,
  options: Pick<LoadFromPathOptions, 'config' | 'named' | 'openaiRelease'>,
): Promise<ConfigSource[]> {
  const sources: ConfigSource[] = [];
  if (options.config !== undefined) sources.push(ourTermsSource(options.config, 'LoadModelOptions.config', 'given'));
  if (options.named) sources.push(ourTermsSource(options.named.config, options.named.label, options.named.label));
  for (const file of location.files) {
    if (!file.endsWith('.safetensors')) continue;
    const source = await metadataSource(file, 'metadata');
    if (source) sources.push(source);
  }
  const beside = (name: string) => path.join(location.dir, name);
  if (await exists(beside('config.json'))) {
    const source = configJsonSource(await readJsonFile(beside('config.json')), beside('config.json'), location.folder);
    if (source) sources.push(source);
  }
  if (await exists(beside('preprocessor_config.json'))) {
    sources.push(hfPreprocessorSource(await readJsonFile(beside('preprocessor_config.json')), beside('preprocessor_config.json')));
  }
  if (await exists(beside('open_clip_config.json'))) {
    sources.push(openClipSource(await readJsonFile(beside('open_clip_config.json')), beside('open_clip_config.json')));
  }
  if (options.openaiRelease) sources.push(openaiSource(`OpenAI's release ${options.openaiRelease}`));
  return sources;
}

/**
 * Safetensors files beside a single weight file with the same first name part (`x.pt` beside
 * `x.safetensors`), whose metadata holds a configuration. Only a guess by name: consulted when nothing
 * else states the architecture, and one that contradicts the weights' shapes is another model.
 */
async function siblingSources(location: WeightLocation): Promise<ConfigSource[]> {
  if (location.folder) return [];
  const file = location.files[0]!;
  const stem = path.basename(file).split('.')[0]!;
  const names = await fs.readdir(location.dir).catch(() => [] as string[]);
  const sources: ConfigSource[] = [];
  for (const name of names.sort()) {
    const sibling = path.join(location.dir, name);
    if (!name.endsWith('.safetensors') || name.split('.')[0] !== stem || sibling === file) continue;
    const source = await metadataSource(sibling, sibling).catch(() => undefined);
    if (source) sources.push(source);
  }
  return sources;
}

let openaiHashes: Map<string, string> | undefined;

/** OpenAI's released file with this content, by SHA-256 (only TorchScript archives are hashed). */
async function openaiReleaseOf(file: string): Promise<string | undefined> {
  openaiHashes ??= new Map(MODEL_NAMES.map((name) => [pretrainedFile(name)!.sha256, name]));
  const name = openaiHashes.get(await sha256File(file));
  return name === undefined ? undefined : `OpenAI's release ${name} (SHA-256 of ${file})`;
}

function isComplete(merged: MergedConfig): boolean {
  return ARCHITECTURE_FIELDS.every((field) => merged.values[field] !== undefined);
}

const UNKNOWABLE: Array<[ConfigField, string]> = [
  ['activation', 'the MLP activation'],
  ['transformer_heads', 'the text attention heads'],
  ['vision_heads', 'the vision attention heads'],
];

/** What shapes cannot tell and no source states, as a warning that says how to state it. */
function assumptionWarning(location: WeightLocation, merged: MergedConfig, config: ClipConfig): string | undefined {
  const unstated = UNKNOWABLE.filter(([field]) => merged.values[field] === undefined);
  if (unstated.length === 0) return undefined;
  const full = withOpenAIDefaults(config);
  const assumed = unstated.map(([field, name]) => {
    if (field === 'activation') return `${name} QuickGELU (OpenAI's)`;
    if (field === 'transformer_heads') return `${name} ${full.transformer_heads} (width ${full.transformer_width} / 64)`;
    return `${name} ${referenceVisionHeads(full)} (the reference's rule)`;
  });
  const keys = unstated.map(([field]) => `"${field}"`).join(', ');
  return (
    `${location.files[0]}: nothing states ${unstated.map(([, name]) => name).join(', ')}, which the weights' shapes cannot tell; ` +
    `assumed ${assumed.join('; ')}. That is right for OpenAI's CLIP; open_clip's GELU models (LAION, DataComp, MetaCLIP, …) ` +
    `and many Hugging Face models differ. State it: an open_clip_config.json or Hugging Face config.json beside the weights, ` +
    `or a config.json in clip-native's terms with ${keys} (e.g. "activation": "gelu"), or LoadModelOptions.config.`
  );
}

/** The native shape errors, pinned to the configuration field and source they contradict where possible. */
async function explainMisfit(err: Error, location: WeightLocation, sources: ConfigSource[], options: LoadFromPathOptions): Promise<Error> {
  if (!/do not fit this model/.test(err.message)) return err;
  const unexplained = new Error(`${err.message} The configuration came from ${sources.map((s) => s.label).join(', ')}, which the weights' shapes contradict.`);
  let inferred: NativeLoadResult;
  try {
    inferred = await loadNativeModel(location.files, { device: 'cpu', strict: false, memoryFormat: options.memoryFormat });
  } catch {
    return unexplained;
  }
  try {
    const config = JSON.parse(inferred.model.config()) as ClipConfig;
    mergeSources([...sources, shapesSource(config, location.files.length > 1 ? location.dir : location.files[0]!)]);
  } catch (contradiction) {
    return new Error(`${(contradiction as Error).message}\n(${err.message})`);
  } finally {
    inferred.model.dispose();
  }
  return unexplained;
}

async function nativeLoad(location: WeightLocation, config: ClipConfig | undefined, options: LoadFromPathOptions): Promise<NativeLoadResult> {
  return loadNativeModel(location.files.length === 1 ? location.files[0]! : location.files, {
    device: options.device,
    strict: options.strict,
    config: config ? JSON.stringify(config) : undefined,
    memoryFormat: options.memoryFormat,
  });
}

/** The text head count a TorchScript archive's traced graph records, as a source. */
function graphSource(loaded: NativeLoadResult, location: WeightLocation): ConfigSource | undefined {
  const heads = loaded.metadata.transformer_heads;
  if (loaded.format !== 'torchscript' || heads === undefined) return undefined;
  return {
    label: `the traced graph of ${location.files[0]}`,
    short: 'the TorchScript graph',
    values: { transformer_heads: Number(heads) },
    keys: { transformer_heads: 'its attention heads' },
    implied: new Set(),
  };
}

/** A model from a weight file or model folder; every configuration source read and merged. */
export async function loadFromPath(given: string, options: LoadFromPathOptions): Promise<{ model: NativeModel; source: LoadedModelSource }> {
  const location = await locateWeights(given);
  const sources = await readConfigSources(location, options);
  let merged = mergeSources(sources);
  let loaded: NativeLoadResult;
  let configSource: string;
  const warnings: string[] = [];

  if (isComplete(merged)) {
    const config = withOpenAIDefaults(merged.values as ClipConfig);
    try {
      loaded = await nativeLoad(location, config, options);
    } catch (err) {
      throw await explainMisfit(err as Error, location, sources, options);
    }
    const graph = graphSource(loaded, location);
    if (graph) {
      try {
        mergeSources([...sources, graph]);
      } catch (err) {
        loaded.model.dispose();
        throw err;
      }
    }
    configSource = sources.map((s) => s.short).join(', ');
  } else {
    // Nothing states the architecture: the native loader infers it from the shapes (the text heads
    // from a TorchScript graph), and the partial sources (preprocessing, OpenAI's release) join it.
    loaded = await nativeLoad(location, undefined, options);
    try {
      const inferred = JSON.parse(loaded.model.config()) as ClipConfig;
      const extra: ConfigSource[] = [];
      const graph = graphSource(loaded, location);
      if (graph) extra.push(graph);
      if (merged.values.activation === undefined && loaded.format === 'torchscript' && location.files.length === 1) {
        const release = await openaiReleaseOf(location.files[0]!);
        if (release) extra.push(openaiSource(release));
      }
      const shapes = shapesSource(inferred, location.files.length > 1 ? location.dir : location.files[0]!);
      if (loaded.format !== 'torchscript' && merged.values.transformer_heads === undefined) {
        for (const sibling of await siblingSources(location)) {
          try {
            mergeSources([...sources, ...extra, sibling, shapes]);
          } catch {
            continue; // another model's
          }
          extra.push(sibling);
          break;
        }
      }
      merged = mergeSources([...sources, ...extra, shapes]);
      const config = withOpenAIDefaults({ ...inferred, ...merged.values } as ClipConfig);
      const warning = assumptionWarning(location, merged, config);
      if (warning) warnings.push(warning);
      const others = [...sources, ...extra].filter((s) => s !== graph);
      configSource = [loaded.configSource, ...others.map((s) => s.short)].join(', ');
      if (!sameConfig(config, inferred)) {
        loaded.model.dispose();
        loaded = await nativeLoad(location, config, options);
      }
    } catch (err) {
      loaded.model.dispose();
      throw err;
    }
  }
  for (const warning of warnings) (options.onWarning ?? defaultWarn)(warning);
  return {
    model: loaded.model,
    source: {
      path: location.given,
      weights: location.files,
      layout: location.layout,
      format: loaded.format,
      configSource,
      hfNames: loaded.hfNames,
      report: loaded.report,
      metadata: loaded.metadata,
      warnings,
    },
  };
}

function defaultWarn(message: string): void {
  process.emitWarning(message, { code: 'CLIP_NATIVE_ASSUMED_CONFIG' });
}
