// Where a model's configuration can come from, and how the sources are merged. Every source is read
// into ClipConfig's terms together with where each value stands in it (its key), so that two sources
// that disagree on a field produce an error naming both files, the key in each and both values —
// never a silent choice. The sources:
//
// - an explicit configuration (LoadModelOptions.config), in clip-native's terms;
// - the weights' own safetensors metadata `config` (what ClipModel.save writes);
// - `config.json`: a Hugging Face `CLIPConfig` (transformers' defaults for the keys it omits), or a
//   configuration in clip-native's terms;
// - `preprocessor_config.json`: a Hugging Face `CLIPImageProcessor` (mean, std, resize and crop);
// - `open_clip_config.json`: open_clip's `model_cfg` and `preprocess_cfg` (read by open-clip-config.ts,
//   which refuses every option that builds something other than a plain CLIP);
// - a same-model safetensors file beside a single weight file (its metadata `config`);
// - OpenAI's own release (a name resolved from the model cache, or a file with a known SHA-256);
// - the text head count a TorchScript archive's traced graph records;
// - the weights' shapes (checked by the native loader, or inferred from when nothing else states them).
//
// A value is either stated (written in the source) or implied (the source leaves the key out, and its
// library's default applies: transformers' CLIPConfig defaults, open_clip's CLIPVisionCfg/CLIPTextCfg
// defaults, OpenAI's values for an optional ClipConfig key). Stated values must agree; an implied value
// gives way to a stated one; where only implied values exist, they must agree too. Our own metadata is
// the exception: ClipModel.save writes every value that is not OpenAI's, so what it leaves out is stated.
import { promises as fs } from 'node:fs';

import { readSafetensorsMetadata } from '../io/safetensors-header.js';
import { isResNet, OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, type ClipConfig } from './config.js';
import { clipConfigFromOpenClipJson } from './open-clip-config.js';

export type ConfigField = keyof ClipConfig;

/** Fields every architecture needs (the native configuration's required keys and their companions). */
export const ARCHITECTURE_FIELDS: readonly ConfigField[] = [
  'embed_dim', 'image_resolution', 'vision_layers', 'vision_width', 'vision_patch_size', 'context_length', 'vocab_size',
  'transformer_width', 'transformer_heads', 'transformer_layers',
];
export const OPTIONAL_FIELDS: readonly ConfigField[] = [
  'activation', 'vision_heads', 'vision_mlp_width', 'transformer_mlp_width', 'image_mean', 'image_std', 'image_resize_mode',
];
const ALL_FIELDS = new Set<string>([...ARCHITECTURE_FIELDS, ...OPTIONAL_FIELDS]);

/** What the weights' shapes tell (the native shape inference); heads and activation they cannot. */
export const SHAPE_FIELDS: readonly ConfigField[] = [
  'embed_dim', 'image_resolution', 'vision_layers', 'vision_width', 'vision_patch_size', 'context_length', 'vocab_size',
  'transformer_width', 'transformer_layers', 'vision_mlp_width', 'transformer_mlp_width',
];

const FIELD_NAMES: Record<ConfigField, string> = {
  embed_dim: 'the embedding width',
  image_resolution: 'the image resolution',
  vision_layers: 'the vision depth',
  vision_width: 'the vision width',
  vision_patch_size: 'the patch size',
  context_length: 'the context length',
  vocab_size: 'the vocabulary size',
  transformer_width: 'the text width',
  transformer_heads: 'the text attention heads',
  transformer_layers: 'the text depth',
  activation: 'the MLP activation',
  vision_heads: 'the vision attention heads',
  vision_mlp_width: 'the vision MLP width',
  transformer_mlp_width: 'the text MLP width',
  image_mean: 'the image mean',
  image_std: 'the image standard deviation',
  image_resize_mode: 'the resize mode',
};

export interface ConfigSource {
  /** The source in messages: a file, `LoadModelOptions.config`, `the metadata of <file>`, … */
  label: string;
  /** The source in `ClipModel.source.configSource`. */
  short: string;
  values: Partial<ClipConfig>;
  /** Where each value stands in the source; absent: the ClipConfig key itself. */
  keys: Partial<Record<ConfigField, string>>;
  /** Values the source does not write but its library assumes (named "absent: default" in messages). */
  implied: Set<ConfigField>;
}

export interface MergedConfig {
  values: Partial<ClipConfig>;
  /** The source each value was taken from (the first of those that state it). */
  from: Partial<Record<ConfigField, ConfigSource>>;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A small JSON file (configurations are kilobytes; anything over 16 MiB is not one). */
export async function readJsonFile(file: string): Promise<unknown> {
  const stat = await fs.stat(file);
  if (!stat.isFile()) throw new Error(`${file} is not a regular file`);
  if (stat.size > 16 << 20) throw new Error(`${file} is ${stat.size} bytes, too large for a configuration file`);
  const text = await fs.readFile(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function equalValues(field: ConfigField, a: unknown, b: unknown): boolean {
  if (field === 'image_mean' || field === 'image_std') {
    const x = a as number[];
    const y = b as number[];
    return x.length === y.length && x.every((v, i) => Math.abs(v - y[i]!) <= 1e-6);
  }
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function describe(source: ConfigSource, field: ConfigField): string {
  const key = source.keys[field] ?? field;
  const value = JSON.stringify(source.values[field] ?? null);
  return source.implied.has(field) ? `${source.label} leaves ${key} out, which means ${value}` : `${source.label} has ${key} = ${value}`;
}

/**
 * The sources' values together. A field stated by two sources must agree, otherwise an Error names
 * both sources, their keys and values. A value a source only implies (its library's default for a key
 * it leaves out) gives way to a stated one; where only implied values exist, they too must agree.
 */
export function mergeSources(sources: readonly ConfigSource[]): MergedConfig {
  const merged: MergedConfig = { values: {}, from: {} };
  for (const pass of ['stated', 'implied'] as const) {
    for (const source of sources) {
      for (const [field, value] of Object.entries(source.values) as Array<[ConfigField, unknown]>) {
        if (value === undefined || source.implied.has(field) !== (pass === 'implied')) continue;
        const first = merged.from[field];
        if (!first) {
          (merged.values as Record<string, unknown>)[field] = value;
          merged.from[field] = source;
        } else if (!equalValues(field, first.values[field], value) && (pass === 'stated' || first.implied.has(field))) {
          throw new Error(
            `contradictory configuration for ${FIELD_NAMES[field]} (${field}): ${describe(first, field)}, but ${describe(source, field)}. ` +
              'Correct or remove the wrong one.',
          );
        }
      }
    }
  }
  return merged;
}

/** The reference's head rule (openai/CLIP build_model): ViT width / 64, ResNet attention pool width × 32 / 64. */
export function referenceVisionHeads(config: Pick<ClipConfig, 'vision_layers' | 'vision_width'>): number {
  return Math.floor(Array.isArray(config.vision_layers) ? (config.vision_width * 32) / 64 : config.vision_width / 64);
}

/** Every optional field of a configuration in clip-native's terms, OpenAI's value where it is absent. */
export function withOpenAIDefaults(config: ClipConfig): ClipConfig {
  const out: ClipConfig = {
    ...config,
    context_length: config.context_length ?? 77,
    vocab_size: config.vocab_size ?? 49408,
    activation: config.activation ?? 'quick_gelu',
    vision_heads: config.vision_heads ?? referenceVisionHeads(config),
    transformer_mlp_width: config.transformer_mlp_width ?? 4 * config.transformer_width,
    image_mean: config.image_mean ?? [...OPENAI_IMAGE_MEAN],
    image_std: config.image_std ?? [...OPENAI_IMAGE_STD],
    image_resize_mode: config.image_resize_mode ?? 'shortest',
  };
  if (isResNet(config)) {
    out.vision_patch_size = null;
    delete out.vision_mlp_width;
  } else {
    out.vision_mlp_width = config.vision_mlp_width ?? 4 * config.vision_width;
  }
  return out;
}

/** Same model, whatever defaults either writes out. */
export function sameConfig(a: ClipConfig, b: ClipConfig): boolean {
  const x = withOpenAIDefaults(a);
  const y = withOpenAIDefaults(b);
  return [...ALL_FIELDS].every((f) => equalValues(f as ConfigField, x[f as ConfigField], y[f as ConfigField]));
}

/**
 * A configuration in clip-native's terms (LoadModelOptions.config, our metadata, a config.json of
 * ours): every key must be one of ClipConfig's, the architecture's keys present; it states every field.
 */
export function ourTermsSource(value: unknown, label: string, short: string, absentIsStated = false): ConfigSource {
  if (!isObject(value)) throw new Error(`${label}: a CLIP configuration must be a JSON object`);
  for (const key of Object.keys(value)) {
    if (!ALL_FIELDS.has(key)) throw new Error(`${label}: '${key}' is not a CLIP configuration key (known: ${[...ALL_FIELDS].join(', ')})`);
  }
  for (const key of ['embed_dim', 'image_resolution', 'vision_layers', 'vision_width', 'transformer_width', 'transformer_heads', 'transformer_layers']) {
    if (value[key] === undefined) throw new Error(`${label}: the CLIP configuration has no '${key}'`);
  }
  const config = value as unknown as ClipConfig;
  const full = withOpenAIDefaults(config);
  const implied = new Set<ConfigField>();
  if (!absentIsStated) for (const field of Object.keys(full) as ConfigField[]) if (config[field] === undefined) implied.add(field);
  if (!isResNet(config) && config.vision_patch_size === undefined) throw new Error(`${label}: a ViT configuration needs 'vision_patch_size'`);
  return { label, short, values: full, keys: {}, implied };
}

/** Does this config.json look like a configuration in clip-native's terms? */
function isOurTerms(value: Json): boolean {
  return value.embed_dim !== undefined && value.transformer_width !== undefined && value.vision_width !== undefined && value.model_type === undefined;
}

// transformers' CLIPTextConfig / CLIPVisionConfig / CLIPConfig defaults (configuration_clip.py).
const HF_TEXT_DEFAULTS: Json = {
  vocab_size: 49408, hidden_size: 512, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 8,
  max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, eos_token_id: 49407,
};
const HF_VISION_DEFAULTS: Json = {
  hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, num_channels: 3,
  image_size: 224, patch_size: 32, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
};
const HF_ACTIVATIONS: Record<string, ClipConfig['activation']> = { quick_gelu: 'quick_gelu', gelu: 'gelu' };

/**
 * A Hugging Face `CLIPConfig` (config.json of a CLIPModel) in clip-native's terms. The keys it omits
 * are transformers' defaults, as `CLIPConfig.from_pretrained` would build them; what transformers
 * would build but clip-native cannot (another activation, LayerNorm eps, channels) refuses the file.
 */
export function hfConfigSource(json: unknown, file: string): ConfigSource {
  if (!isObject(json)) throw new Error(`${file}: not a JSON object`);
  if (json.model_type !== undefined && json.model_type !== 'clip') {
    throw new Error(`${file}: model_type '${String(json.model_type)}' is not a Hugging Face CLIPModel ('clip'); clip-native builds CLIP models only`);
  }
  const tower = (name: 'text_config' | 'vision_config', defaults: Json) => {
    const base = json[name] ?? {};
    const override = json[`${name}_dict`] ?? {};
    if (!isObject(base) || !isObject(override)) throw new Error(`${file}: ${name} must be an object`);
    const stated: Json = { ...base, ...override };
    const where = (key: string) => (override[key] !== undefined ? `${name}_dict.${key}` : `${name}.${key}`);
    const get = (key: string) => (stated[key] !== undefined && stated[key] !== null ? stated[key] : defaults[key]);
    return { stated, where, get };
  };
  const text = tower('text_config', HF_TEXT_DEFAULTS);
  const vision = tower('vision_config', HF_VISION_DEFAULTS);
  const values: Partial<ClipConfig> = {};
  const keys: Partial<Record<ConfigField, string>> = {};
  const implied = new Set<ConfigField>();
  const int = (t: typeof text, key: string): number => {
    const v = t.get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`${file}: ${t.where(key)} must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const square = (t: typeof text, key: string): number => {
    const v = t.get(key);
    if (Array.isArray(v)) {
      if (v.length !== 2 || v[0] !== v[1]) throw new Error(`${file}: ${t.where(key)} = ${JSON.stringify(v)} is not square; clip-native builds square inputs only`);
      return int({ ...t, get: () => v[0] }, key);
    }
    return int(t, key);
  };
  const set = (field: ConfigField, t: typeof text | undefined, key: string, value: unknown) => {
    (values as Record<string, unknown>)[field] = value;
    keys[field] = t ? t.where(key) : key;
    if (t ? t.stated[key] === undefined || t.stated[key] === null : json[key] === undefined || json[key] === null) implied.add(field);
  };

  const projection = json.projection_dim ?? 512;
  if (typeof projection !== 'number' || !Number.isInteger(projection) || projection <= 0) throw new Error(`${file}: projection_dim must be a positive integer`);
  set('embed_dim', undefined, 'projection_dim', projection);
  set('image_resolution', vision, 'image_size', square(vision, 'image_size'));
  set('vision_layers', vision, 'num_hidden_layers', int(vision, 'num_hidden_layers'));
  set('vision_width', vision, 'hidden_size', int(vision, 'hidden_size'));
  set('vision_patch_size', vision, 'patch_size', square(vision, 'patch_size'));
  set('vision_heads', vision, 'num_attention_heads', int(vision, 'num_attention_heads'));
  set('vision_mlp_width', vision, 'intermediate_size', int(vision, 'intermediate_size'));
  set('context_length', text, 'max_position_embeddings', int(text, 'max_position_embeddings'));
  set('vocab_size', text, 'vocab_size', int(text, 'vocab_size'));
  set('transformer_width', text, 'hidden_size', int(text, 'hidden_size'));
  set('transformer_heads', text, 'num_attention_heads', int(text, 'num_attention_heads'));
  set('transformer_layers', text, 'num_hidden_layers', int(text, 'num_hidden_layers'));
  set('transformer_mlp_width', text, 'intermediate_size', int(text, 'intermediate_size'));

  const activation = (t: typeof text): ClipConfig['activation'] => {
    const act = t.get('hidden_act');
    const mapped = typeof act === 'string' && Object.hasOwn(HF_ACTIVATIONS, act) ? HF_ACTIVATIONS[act] : undefined;
    if (!mapped) throw new Error(`${file}: ${t.where('hidden_act')} = ${JSON.stringify(act)}: clip-native builds quick_gelu or gelu (exact erf) MLPs only`);
    return mapped;
  };
  const textAct = activation(text);
  const visionAct = activation(vision);
  if (textAct !== visionAct) {
    throw new Error(`${file}: ${text.where('hidden_act')} = '${String(text.get('hidden_act'))}' but ${vision.where('hidden_act')} = '${String(vision.get('hidden_act'))}': clip-native builds one activation for both towers`);
  }
  values.activation = textAct;
  keys.activation = `${text.where('hidden_act')} and ${vision.where('hidden_act')}`;
  if (text.stated.hidden_act === undefined && vision.stated.hidden_act === undefined) implied.add('activation');

  for (const t of [text, vision]) {
    const eps = t.get('layer_norm_eps');
    if (typeof eps !== 'number' || Math.abs(eps - 1e-5) > 1e-12) throw new Error(`${file}: ${t.where('layer_norm_eps')} = ${JSON.stringify(eps)}: clip-native's LayerNorms use eps 1e-5 (CLIP's)`);
  }
  if (vision.get('num_channels') !== 3) throw new Error(`${file}: ${vision.where('num_channels')} = ${JSON.stringify(vision.get('num_channels'))}: clip-native takes RGB images (3 channels)`);
  // transformers pools the text at the first eos_token_id; CLIP (and clip-native) at the highest token
  // id. The same position when eos is the vocabulary's last id; 2 is transformers' legacy argmax.
  const eos = text.get('eos_token_id');
  if (eos !== undefined && eos !== null && eos !== 2 && eos !== (values.vocab_size as number) - 1) {
    throw new Error(`${file}: ${text.where('eos_token_id')} = ${JSON.stringify(eos)}: clip-native pools the text at its highest token id, which is the end-of-text token only when it is the vocabulary's last (${(values.vocab_size as number) - 1})`);
  }
  return { label: file, short: file, values, keys, implied };
}

// transformers' CLIPImageProcessor defaults (image_processing_clip.py).
const CLIP_PROCESSOR_TYPES = new Set(['CLIPImageProcessor', 'CLIPImageProcessorFast', 'CLIPImageProcessorPil', 'CLIPFeatureExtractor']);
const PIL_BICUBIC = 3;

/** A Hugging Face `CLIPImageProcessor` (preprocessor_config.json): normalisation, resize and crop. */
export function hfPreprocessorSource(json: unknown, file: string): ConfigSource {
  if (!isObject(json)) throw new Error(`${file}: not a JSON object`);
  const type = json.image_processor_type ?? json.feature_extractor_type;
  if (type !== undefined && !CLIP_PROCESSOR_TYPES.has(String(type))) {
    const key = json.image_processor_type !== undefined ? 'image_processor_type' : 'feature_extractor_type';
    throw new Error(`${file}: ${key} '${String(type)}': clip-native prepares images as CLIPImageProcessor does, and reads its settings only`);
  }
  const values: Partial<ClipConfig> = {};
  const keys: Partial<Record<ConfigField, string>> = {};
  const implied = new Set<ConfigField>();
  const flag = (key: string, wanted: boolean, why: string) => {
    const v = json[key];
    if (v !== undefined && v !== wanted) throw new Error(`${file}: ${key} = ${JSON.stringify(v)}: ${why}`);
  };
  flag('do_resize', true, 'clip-native always resizes');
  flag('do_rescale', true, 'clip-native always scales pixels to [0, 1]');
  flag('do_normalize', true, 'clip-native always normalises with the mean and std');
  if (json.rescale_factor !== undefined && Math.abs(Number(json.rescale_factor) - 1 / 255) > 1e-9) {
    throw new Error(`${file}: rescale_factor = ${JSON.stringify(json.rescale_factor)}: clip-native scales pixels by 1/255`);
  }
  if (json.resample !== undefined && json.resample !== PIL_BICUBIC) {
    throw new Error(`${file}: resample = ${JSON.stringify(json.resample)}: clip-native resizes bicubically only (resample 3)`);
  }
  const triple = (key: 'image_mean' | 'image_std', fallback: [number, number, number]) => {
    const v = json[key];
    if (v === undefined || v === null) {
      implied.add(key);
      return [...fallback] as [number, number, number];
    }
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new Error(`${file}: ${key} must be three numbers, got ${JSON.stringify(v)}`);
    }
    return [v[0], v[1], v[2]] as [number, number, number];
  };
  values.image_mean = triple('image_mean', OPENAI_IMAGE_MEAN);
  values.image_std = triple('image_std', OPENAI_IMAGE_STD);

  const side = (v: unknown, key: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`${file}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  // crop_size: an int (older files) or {height, width}; default 224.
  let crop: number | undefined;
  if (json.do_center_crop !== false) {
    const c = json.crop_size ?? { height: 224, width: 224 };
    if (typeof c === 'number') crop = side(c, 'crop_size');
    else if (isObject(c)) {
      const h = side(c.height, 'crop_size.height');
      if (side(c.width, 'crop_size.width') !== h) throw new Error(`${file}: crop_size ${JSON.stringify(c)} is not square; clip-native builds square inputs only`);
      crop = h;
    } else throw new Error(`${file}: crop_size must be a number or {height, width}`);
  }
  // size: an int (older files: the shortest edge), {shortest_edge} or {height, width}; default {shortest_edge: 224}.
  const size = json.size ?? { shortest_edge: 224 };
  const sizeImplied = json.size === undefined;
  let mode: ClipConfig['image_resize_mode'];
  let resolution: number;
  let resolutionKey: string;
  if (typeof size === 'number' || (isObject(size) && size.shortest_edge !== undefined)) {
    const key = typeof size === 'number' ? 'size' : 'size.shortest_edge';
    const shortest = side(typeof size === 'number' ? size : (size as Json).shortest_edge, key);
    if (crop === undefined) throw new Error(`${file}: do_center_crop = false with ${key} = ${shortest} gives images of any aspect; clip-native needs a square crop`);
    if (shortest !== crop) {
      throw new Error(`${file}: ${key} = ${shortest} with crop_size ${crop}: clip-native resizes the shortest side to the crop size itself (OpenAI's preprocessing), not to another size first`);
    }
    mode = 'shortest';
    resolution = crop;
    resolutionKey = json.crop_size === undefined ? key : 'crop_size';
  } else if (isObject(size) && size.height !== undefined) {
    const h = side(size.height, 'size.height');
    if (side(size.width, 'size.width') !== h) throw new Error(`${file}: size ${JSON.stringify(size)} is not square; clip-native builds square inputs only`);
    if (crop !== undefined && crop !== h) throw new Error(`${file}: size ${h}×${h} then crop_size ${crop}: clip-native does not crop after squashing`);
    mode = 'squash';
    resolution = h;
    resolutionKey = 'size.height';
  } else {
    throw new Error(`${file}: size ${JSON.stringify(size)} is neither {shortest_edge} nor {height, width}`);
  }
  values.image_resize_mode = mode;
  keys.image_resize_mode = mode === 'shortest' ? 'size.shortest_edge with do_center_crop' : 'size {height, width}';
  values.image_resolution = resolution;
  keys.image_resolution = resolutionKey;
  if (sizeImplied) implied.add('image_resize_mode');
  if (sizeImplied && json.crop_size === undefined) implied.add('image_resolution');
  return { label: file, short: file, values, keys, implied };
}

// Where each field stands in an open_clip_config.json (open_clip's model.py names).
const OPEN_CLIP_KEYS: Record<ConfigField, string> = {
  embed_dim: 'model_cfg.embed_dim',
  image_resolution: 'vision_cfg.image_size',
  vision_layers: 'vision_cfg.layers',
  vision_width: 'vision_cfg.width',
  vision_patch_size: 'vision_cfg.patch_size',
  context_length: 'text_cfg.context_length',
  vocab_size: 'text_cfg.vocab_size',
  transformer_width: 'text_cfg.width',
  transformer_heads: 'text_cfg.heads',
  transformer_layers: 'text_cfg.layers',
  activation: 'model_cfg.quick_gelu',
  vision_heads: 'vision_cfg.width / vision_cfg.head_width',
  vision_mlp_width: 'vision_cfg.width × vision_cfg.mlp_ratio',
  transformer_mlp_width: 'text_cfg.width × text_cfg.mlp_ratio',
  image_mean: 'preprocess_cfg.mean',
  image_std: 'preprocess_cfg.std',
  image_resize_mode: 'preprocess_cfg.resize_mode',
};
// The open_clip keys behind each field, to tell stated from defaulted.
const OPEN_CLIP_RAW: Partial<Record<ConfigField, Array<[string, string]>>> = {
  image_resolution: [['vision_cfg', 'image_size']],
  vision_layers: [['vision_cfg', 'layers']],
  vision_width: [['vision_cfg', 'width']],
  vision_patch_size: [['vision_cfg', 'patch_size']],
  context_length: [['text_cfg', 'context_length']],
  vocab_size: [['text_cfg', 'vocab_size']],
  transformer_width: [['text_cfg', 'width']],
  transformer_heads: [['text_cfg', 'heads']],
  transformer_layers: [['text_cfg', 'layers']],
  activation: [['model_cfg', 'quick_gelu']],
  vision_heads: [['vision_cfg', 'head_width']],
  vision_mlp_width: [['vision_cfg', 'mlp_ratio']],
  transformer_mlp_width: [['text_cfg', 'mlp_ratio']],
};

/** An open_clip_config.json (open_clip's own reading: model_cfg, then preprocess_cfg). */
export function openClipSource(json: unknown, file: string): ConfigSource {
  const config = clipConfigFromOpenClipJson(json, file);
  const modelCfg = (json as { model_cfg: Json }).model_cfg;
  const sections: Record<string, Json> = {
    model_cfg: modelCfg,
    vision_cfg: (modelCfg.vision_cfg ?? {}) as Json,
    text_cfg: (modelCfg.text_cfg ?? {}) as Json,
  };
  const implied = new Set<ConfigField>();
  for (const [field, raw] of Object.entries(OPEN_CLIP_RAW) as Array<[ConfigField, Array<[string, string]>]>) {
    if (config[field] !== undefined && raw.every(([section, key]) => sections[section]![key] === undefined)) implied.add(field);
  }
  return { label: file, short: file, values: config, keys: { ...OPEN_CLIP_KEYS }, implied };
}

/**
 * A config.json beside the weights: Hugging Face's CLIPConfig, or a configuration in clip-native's
 * terms; undefined when it is neither (some other tool's file, not a model configuration). A Hugging
 * Face configuration of another model type refuses a model folder (it describes the folder's model);
 * beside a single weight file it may describe another file, and is passed over (`ownFolder` false).
 */
export function configJsonSource(json: unknown, file: string, ownFolder = true): ConfigSource | undefined {
  if (!isObject(json)) return undefined;
  if (isOurTerms(json)) return ourTermsSource(json, file, file);
  if (!ownFolder && json.model_type !== undefined && json.model_type !== 'clip') return undefined;
  if (json.model_type !== undefined || json.text_config !== undefined || json.vision_config !== undefined) return hfConfigSource(json, file);
  return undefined;
}

/** The `config` in a safetensors file's metadata (ClipModel.save writes it); undefined without one. */
export async function metadataSource(file: string, short: string): Promise<ConfigSource | undefined> {
  const text = (await readSafetensorsMetadata(file))?.config;
  if (text === undefined) return undefined;
  const label = `the metadata 'config' of ${file}`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${label} is not valid JSON: ${(err as Error).message}`);
  }
  // ClipModel.save writes every value that is not OpenAI's, so what it leaves out is stated too.
  return ourTermsSource(value, label, short, true);
}

/** OpenAI's release: QuickGELU and OpenAI's preprocessing (the architecture itself is in the weights). */
export function openaiSource(label: string): ConfigSource {
  return {
    label,
    short: label,
    values: { activation: 'quick_gelu', image_mean: [...OPENAI_IMAGE_MEAN], image_std: [...OPENAI_IMAGE_STD], image_resize_mode: 'shortest' },
    keys: {},
    implied: new Set(),
  };
}

/** What the weights' shapes tell, as the native loader inferred it. */
export function shapesSource(inferred: ClipConfig, weights: string): ConfigSource {
  const values: Partial<ClipConfig> = {};
  const full = withOpenAIDefaults(inferred);
  for (const field of SHAPE_FIELDS) if (full[field] !== undefined || field === 'vision_patch_size') (values as Record<string, unknown>)[field] = full[field] ?? null;
  return { label: `the shapes of the weights in ${weights}`, short: 'shapes', values, keys: {}, implied: new Set() };
}
