// Export a model as a folder that another library loads as its own: Hugging Face transformers
// (`CLIPModel.from_pretrained(dir)`, `CLIPProcessor.from_pretrained(dir)`) or open_clip
// (`create_model_and_transforms('local-dir:' + dir)`, or a registered model_cfg with `pretrained=`
// the weight file). The folder is written under a temporary name beside `dir` and renamed into place.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { parseBpeVocabulary, type BpeVocabulary } from '../text/bpe.js';
import { resolveVocabularyPath, type LoadTokenizerOptions } from '../text/vocabulary.js';
import { syncDirectory, temporaryPath } from '../util/atomic.js';
import { isResNet, OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, type ClipConfig } from './config.js';
import type { WeightsSource } from './weights-copy.js';

export type ExportTarget = 'hf' | 'open_clip';
export const EXPORT_TARGETS: readonly ExportTarget[] = ['hf', 'open_clip'];

export interface ExportOptions extends LoadTokenizerOptions {
  /** Which library's layout: Hugging Face transformers' CLIPModel folder, or open_clip's. */
  to: ExportTarget;
  /** Replace an existing folder that is not empty (default false: refuse). */
  overwrite?: boolean;
  /** open_clip only: `open_clip_model.safetensors` (default) or a torch.save'd `open_clip_pytorch_model.bin`. */
  weights?: 'safetensors' | 'pt';
}

export interface ExportResult {
  dir: string;
  to: ExportTarget;
  /** The files written, by name, in the order written. */
  files: string[];
}

/** What transformers' CLIPTokenizer / tokenizers call the special tokens (openai/clip-vit-base-patch32's files). */
const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';
/** `rescale_factor`: 1/255 as Python prints it. */
const RESCALE_FACTOR = 0.00392156862745098;
/**
 * transformers' CLIPConfig default: ln(1/0.07), the value CLIP is initialised with (the weights carry the
 * trained one). JSON has no 1.0 (JSON.stringify writes 1), and transformers 5's strict configuration
 * refuses an integer for a float field (initializer_factor), so only keys whose value is no integer
 * or whose field takes integers are written; the rest keep transformers' defaults.
 */
const LOGIT_SCALE_INIT = 2.6592;

// ---------------------------------------------------------------------------------------------
// The configuration, with OpenAI's values where a key is absent (src/model/config.ts).

export function activationOf(config: ClipConfig): 'quick_gelu' | 'gelu' {
  return config.activation ?? 'quick_gelu';
}

/** The reference's vision head count: ViT width / 64; the ResNet attention pool's width (32 × width) / 64. */
export function visionHeadsOf(config: ClipConfig): number {
  if (config.vision_heads !== undefined) return config.vision_heads;
  return Math.floor((isResNet(config) ? config.vision_width * 32 : config.vision_width) / 64);
}

export function visionMlpWidthOf(config: ClipConfig): number {
  return config.vision_mlp_width ?? 4 * config.vision_width;
}

export function textMlpWidthOf(config: ClipConfig): number {
  return config.transformer_mlp_width ?? 4 * config.transformer_width;
}

/** How a model's images are normalised and resized (its configuration's, else OpenAI's). */
export function imageStatsOf(config: ClipConfig): { mean: number[]; std: number[]; resizeMode: 'shortest' | 'longest' | 'squash' } {
  return { mean: [...(config.image_mean ?? OPENAI_IMAGE_MEAN)], std: [...(config.image_std ?? OPENAI_IMAGE_STD)], resizeMode: config.image_resize_mode ?? 'shortest' };
}

// ---------------------------------------------------------------------------------------------
// Hugging Face transformers

/** Why a model has no Hugging Face CLIPModel folder, or undefined when it has one. */
export function hfUnsupported(config: ClipConfig): string | undefined {
  if (isResNet(config)) {
    return 'a ResNet CLIP has no Hugging Face transformers equivalent (CLIPModel has only a ViT vision tower); export it with --to open_clip';
  }
  if (config.vision_patch_size === null) return 'a ViT needs vision_patch_size';
  if ((config.image_resize_mode ?? 'shortest') === 'longest') {
    return "the model's image_resize_mode 'longest' (longest side to size, then pad) has no CLIPImageProcessor equivalent; export it with --to open_clip";
  }
  return undefined;
}

/**
 * transformers' `CLIPConfig` (config.json) for a ViT CLIP. The token ids are openai/clip-vit-base-patch32's
 * (bos 0, eos 2, pad 1): with eos_token_id 2, transformers' CLIPTextTransformer pools at the argmax of
 * the ids, which is exactly the reference's `text.argmax(dim=-1)` (the first end token).
 */
export function hfConfig(config: ClipConfig): Record<string, unknown> {
  const why = hfUnsupported(config);
  if (why) throw new Error(`cannot export to Hugging Face: ${why}`);
  const hiddenAct = activationOf(config);
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: config.embed_dim,
    logit_scale_init_value: LOGIT_SCALE_INIT,
    torch_dtype: 'float32',
    text_config: {
      model_type: 'clip_text_model',
      hidden_size: config.transformer_width,
      intermediate_size: textMlpWidthOf(config),
      num_attention_heads: config.transformer_heads,
      num_hidden_layers: config.transformer_layers,
      hidden_act: hiddenAct,
      max_position_embeddings: config.context_length,
      vocab_size: config.vocab_size,
      projection_dim: config.embed_dim,
      layer_norm_eps: 1e-5,
      attention_dropout: 0.0,
      initializer_range: 0.02,
      bos_token_id: 0,
      eos_token_id: 2,
      pad_token_id: 1,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: config.vision_width,
      intermediate_size: visionMlpWidthOf(config),
      num_attention_heads: visionHeadsOf(config),
      num_hidden_layers: config.vision_layers as number,
      hidden_act: hiddenAct,
      image_size: config.image_resolution,
      patch_size: config.vision_patch_size,
      num_channels: 3,
      projection_dim: config.embed_dim,
      layer_norm_eps: 1e-5,
      attention_dropout: 0.0,
      initializer_range: 0.02,
    },
  };
}

/** transformers' `CLIPImageProcessor` settings (preprocessor_config.json): bicubic (resample 3) shortest side, centre crop. */
export function hfPreprocessorConfig(config: ClipConfig): Record<string, unknown> {
  const r = config.image_resolution;
  const { mean, std, resizeMode } = imageStatsOf(config);
  if (resizeMode === 'longest') throw new Error(`cannot export to Hugging Face: ${hfUnsupported(config)}`);
  const squash = resizeMode === 'squash';
  return {
    crop_size: { height: r, width: r },
    do_center_crop: !squash,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: mean,
    image_processor_type: 'CLIPImageProcessor',
    image_std: std,
    processor_class: 'CLIPProcessor',
    resample: 3,
    rescale_factor: RESCALE_FACTOR,
    size: squash ? { height: r, width: r } : { shortest_edge: r },
  };
}

function specialToken(content: string) {
  return { content, lstrip: false, normalized: true, rstrip: false, single_word: false };
}

/** A JSON object's text with its keys in the given order (JavaScript objects put integer-like keys first). */
function orderedJsonObject(entries: Iterable<[string, number]>): string {
  const lines: string[] = [];
  for (const [key, value] of entries) lines.push(`  ${JSON.stringify(key)}: ${value}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

/**
 * The tokenizer files of openai/clip-vit-base-patch32, made from our BPE vocabulary as transformers'
 * CLIPTokenizer writes them (`save_vocabulary`): vocab.json is the encoder (the 256 byte characters,
 * the same with `</w>`, one token per merge, the two special tokens: 49408 ids) with sorted keys;
 * merges.txt is a `#version: 0.2` line then the 48894 merges in rank order, one `first second` a line.
 */
export function hfTokenizerFiles(vocabulary: BpeVocabulary, contextLength: number): Record<string, string> {
  const vocab = orderedJsonObject([...vocabulary.encoder].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const merges = [...vocabulary.ranks].sort((a, b) => a[1] - b[1]).map(([pair]) => pair + '\n');
  const special = vocabulary.encoder;
  const addedTokens: Record<string, unknown> = {};
  for (const token of [BOS, EOS]) addedTokens[String(special.get(token))] = { ...specialToken(token), special: true };
  const tokenizerConfig = {
    add_prefix_space: false,
    added_tokens_decoder: addedTokens,
    bos_token: BOS,
    clean_up_tokenization_spaces: false,
    do_lower_case: true,
    eos_token: EOS,
    errors: 'replace',
    model_max_length: contextLength,
    pad_token: EOS,
    processor_class: 'CLIPProcessor',
    tokenizer_class: 'CLIPTokenizer',
    unk_token: EOS,
  };
  const specialTokensMap = { bos_token: specialToken(BOS), eos_token: specialToken(EOS), pad_token: EOS, unk_token: specialToken(EOS) };
  return {
    'vocab.json': vocab,
    'merges.txt': '#version: 0.2\n' + merges.join(''),
    'tokenizer_config.json': JSON.stringify(tokenizerConfig, null, 2) + '\n',
    'special_tokens_map.json': JSON.stringify(specialTokensMap, null, 2) + '\n',
  };
}

// ---------------------------------------------------------------------------------------------
// open_clip

/**
 * `ratio` such that Python's `int(width * ratio)` (open_clip's MLP width) is `mlp`: `mlp / width`, nudged
 * up an ulp at a time where the product rounds below `mlp` (JavaScript's double arithmetic is Python's).
 */
export function mlpRatio(mlp: number, width: number): number {
  let ratio = mlp / width;
  for (let i = 0; i < 4 && Math.trunc(width * ratio) !== mlp; i++) ratio += Number.EPSILON * ratio;
  if (Math.trunc(width * ratio) !== mlp) throw new Error(`no float mlp_ratio gives an MLP width of ${mlp} for width ${width}`);
  return ratio;
}

/** open_clip's `model_cfg` (the CLIP class, OpenAI's tower layouts and state-dict names). */
export function openClipModelConfig(config: ClipConfig): Record<string, unknown> {
  const heads = visionHeadsOf(config);
  const vision: Record<string, unknown> = isResNet(config)
    ? {
        image_size: config.image_resolution,
        layers: [...(config.vision_layers as number[])],
        width: config.vision_width,
        // ModifiedResNet's attention pool: heads = width * 32 // head_width.
        head_width: (config.vision_width * 32) / heads,
        patch_size: null,
      }
    : {
        image_size: config.image_resolution,
        layers: config.vision_layers,
        width: config.vision_width,
        patch_size: config.vision_patch_size,
        head_width: config.vision_width / heads,
        mlp_ratio: mlpRatio(visionMlpWidthOf(config), config.vision_width),
      };
  return {
    embed_dim: config.embed_dim,
    quick_gelu: activationOf(config) === 'quick_gelu',
    vision_cfg: vision,
    text_cfg: {
      context_length: config.context_length,
      vocab_size: config.vocab_size,
      width: config.transformer_width,
      heads: config.transformer_heads,
      layers: config.transformer_layers,
      mlp_ratio: mlpRatio(textMlpWidthOf(config), config.transformer_width),
    },
  };
}

/** open_clip_config.json: `model_cfg` and `preprocess_cfg` (open_clip's transform.py PreprocessCfg fields). */
export function openClipConfig(config: ClipConfig): { model_cfg: Record<string, unknown>; preprocess_cfg: Record<string, unknown> } {
  const { mean, std, resizeMode } = imageStatsOf(config);
  return {
    model_cfg: openClipModelConfig(config),
    preprocess_cfg: { mean, std, interpolation: 'bicubic', resize_mode: resizeMode },
  };
}

// ---------------------------------------------------------------------------------------------
// Writing the folder

async function isNonEmptyDirectory(dir: string): Promise<boolean> {
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (!stat.isDirectory()) throw new Error(`${dir} exists and is not a folder; give --out a folder path`);
  return (await fs.readdir(dir)).length > 0;
}

async function writeDurably(file: string, data: string): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Renames the finished `tmp` folder to `dir`, moving an existing `dir` aside first and removing it after. */
async function moveIntoPlace(tmp: string, dir: string): Promise<void> {
  let aside: string | undefined;
  try {
    await fs.rename(tmp, dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR' && code !== 'ENOTDIR') throw err;
    aside = temporaryPath(dir) + '.old';
    await fs.rename(dir, aside);
    try {
      await fs.rename(tmp, dir);
    } catch (err2) {
      await fs.rename(aside, dir).catch(() => {});
      throw err2;
    }
  }
  await syncDirectory(path.dirname(dir));
  if (aside) await fs.rm(aside, { recursive: true, force: true });
}

/**
 * Writes `model` as a folder another library loads as its own (see the module comment). Refuses a
 * non-empty existing `dir` unless `overwrite`; the folder appears complete or not at all.
 */
export async function exportModel(model: WeightsSource, dir: string, options: ExportOptions): Promise<ExportResult> {
  const { to } = options;
  if (!EXPORT_TARGETS.includes(to)) throw new Error(`export target must be one of ${EXPORT_TARGETS.join(', ')}, got ${JSON.stringify(to)}`);
  const weightsFormat = options.weights ?? 'safetensors';
  if (weightsFormat !== 'safetensors' && weightsFormat !== 'pt') throw new Error(`weights must be safetensors or pt, got ${JSON.stringify(weightsFormat)}`);
  if (to === 'hf' && options.weights === 'pt') throw new Error('a Hugging Face export writes model.safetensors; weights: pt is for --to open_clip');
  const target = path.resolve(dir);
  const config = model.config;

  // Everything that can be refused is refused before anything is written.
  const textFiles: Record<string, string> = {};
  if (to === 'hf') {
    textFiles['config.json'] = JSON.stringify(hfConfig(config), null, 2) + '\n';
    textFiles['preprocessor_config.json'] = JSON.stringify(hfPreprocessorConfig(config), null, 2) + '\n';
    const vocabFile = await resolveVocabularyPath(options);
    Object.assign(textFiles, hfTokenizerFiles(parseBpeVocabulary(await fs.readFile(vocabFile), vocabFile), config.context_length));
  } else {
    textFiles['open_clip_config.json'] = JSON.stringify(openClipConfig(config), null, 2) + '\n';
  }
  if ((await isNonEmptyDirectory(target)) && !options.overwrite) {
    throw new Error(`${target} exists and is not empty; choose another folder or pass overwrite (--overwrite) to replace it`);
  }
  await fs.mkdir(path.dirname(target), { recursive: true });

  const weightsName = to === 'hf' ? 'model.safetensors' : weightsFormat === 'pt' ? 'open_clip_pytorch_model.bin' : 'open_clip_model.safetensors';
  const tmp = temporaryPath(target);
  await fs.mkdir(tmp);
  const files: string[] = [];
  try {
    const copy = await model.copyWeights({ naming: to === 'hf' ? 'hf' : 'openai' });
    await copy.save(path.join(tmp, weightsName), { format: to === 'hf' || weightsFormat === 'safetensors' ? 'safetensors' : 'pt' });
    files.push(weightsName);
    for (const [name, text] of Object.entries(textFiles)) {
      await writeDurably(path.join(tmp, name), text);
      files.push(name);
    }
    await syncDirectory(tmp);
    if (!options.overwrite && (await isNonEmptyDirectory(target))) {
      throw new Error(`${target} was filled while the export was written; it is left as it is`);
    }
    await moveIntoPlace(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return { dir: target, to, files };
}
